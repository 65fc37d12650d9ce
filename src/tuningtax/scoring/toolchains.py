"""Toolchain registry: how the stdin/stdout scorer compiles and runs a program in each language SAFIM holds.

Commands follow SAFIM's executor, ExecEval (github.com/ntunlp/ExecEval, execution_engine/config.yaml: the
runtimes "GNU C++17", "Java 17" and "Mono C#" that SAFIM's exec_utils.py asks for), except that the JVM's
heap is capped below the sandbox's address-space limit and javac reads sources as UTF-8. Python needs no toolchain
beyond the interpreter that runs the pipeline.

A language whose executables are missing is not an error: its benchmarks are skipped with a message naming
the packages to install (tuningtax.config).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass

# ExecEval's rule for a Java program's file name (settings.py: r"public.* class (\w+)(.|\n|\r\n)*{"), with the
# tail written as one character class: the same language, without the exponential backtracking of the
# alternation on CRLF sources that have no `{` after a match.
JAVA_PUBLIC_CLASS = re.compile(r"public.* class (\w+)[\s\S]*\{")


@dataclass(frozen=True)
class Toolchain:
    language: str
    source_file: str  # "{main}" stands for the Java public class
    compile: tuple[str, ...]  # empty: Python, checked in-process with compile()
    run: tuple[str, ...]
    executables: tuple[str, ...]  # what must be on PATH
    install: str  # how to get them, shown when they are missing
    memory_mb: int = 0  # address space a program needs at least (the JVM reserves its heap up front)

    def commands(self, source: str) -> tuple[str, list[str], list[str]]:
        """(file to write, compile command, run command) for this source: Java's are named by its class."""
        main = java_main_class(source) if self.language == "java" else ""
        return (self.source_file.replace("{main}", main), [part.replace("{main}", main) for part in self.compile],
                [part.replace("{main}", main) for part in self.run])


TOOLCHAINS: dict[str, Toolchain] = {t.language: t for t in (
    Toolchain("python", "solution.py", (), ("{python}", "-W", "ignore", "-OO", "-s", "-S", "solution.py"), (), ""),
    Toolchain("cpp", "solution.cpp",
              ("g++", "-std=c++17", "-s", "-x", "c++", "-O2", "-w", "-DONLINE_JUDGE", "-include", "limits.h",
               "-include", "math.h", "-static", "solution.cpp", "-o", "solution.out", "-lm"),
              ("./solution.out",), ("g++",), "a C++17 compiler with static libraries (Debian: apt install g++)"),
    Toolchain("java", "{main}.java",
              ("javac", "-J-Xmx512m", "-J-Xss8m", "-nowarn", "-encoding", "UTF-8", "-d", ".", "{main}.java"),
              ("java", "-DONLINE_JUDGE=true", "-Xlog:disable", "-Xmx1g", "-XX:ReservedCodeCacheSize=64m",
               "-XX:-UseCompressedClassPointers", "-Xss256k", "-XX:+UseSerialGC", "-cp", ".", "{main}"),
              ("javac", "java"), "a JDK 17 (Debian: apt install openjdk-17-jdk-headless)", memory_mb=6144),
    # Roslyn's csc, as ExecEval: Debian's mono-mcs is not enough, its mcs stops at C# 7.2 and failed to
    # compile 239 of the 1063 C# block and control gold solutions (docs/benchmarks.md).
    Toolchain("csharp", "solution.cs", ("csc", "-optimize+", "-nologo", "-out:solution.exe", "solution.cs"),
              ("mono", "solution.exe"), ("csc", "mono"),
              "Mono with Roslyn's csc (the Mono Project's mono-complete package; Debian's mono-mcs lacks csc)",
              memory_mb=4096),
)}


def java_main_class(source: str) -> str:
    match = JAVA_PUBLIC_CLASS.search(source)
    return match.group(1).strip() if match else "Main"


def missing_executables(language: str) -> list[str]:
    return [exe for exe in TOOLCHAINS[language].executables if shutil.which(exe) is None]
