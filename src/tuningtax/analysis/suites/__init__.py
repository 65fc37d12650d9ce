"""Expectation suites of the analysis outputs (findings, plot data). A package of its own so that no command's
import closure holds them: each validation rule declares its suite as an input instead."""
