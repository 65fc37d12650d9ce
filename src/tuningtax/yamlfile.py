"""YAML files read strictly: a repeated key is an error, not a silent overwrite. Standard library and PyYAML
only, so the model commands can read params.yaml without importing the registries tuningtax.config does."""

from __future__ import annotations

from pathlib import Path

import yaml

from tuningtax.errors import UserError


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word: a model listed twice would silently vanish."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}: each name may appear once in a mapping; rename or "
                    "merge the two entries", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path):
    """The parsed file, or a UserError naming it when it is not valid YAML or repeats a key."""
    try:
        return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=_UniqueKeyLoader) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{path}: not valid YAML: {err}") from None
