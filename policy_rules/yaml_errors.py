"""Load a YAML rule file into a pydantic model; errors name the file, line and field."""

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)
_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class UniqueKeyLoader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """libyaml's safe loader (when present) that refuses a key given twice in one mapping: plain YAML keeps the
    last one, so a second `exclude:` added at the end of a lexicon would silently drop the first list."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else id(key_node)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping (first on line {seen[key]})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


class RuleFileError(ValueError):
    """A rule or data file is malformed: where (file:line) and which field."""

    def __init__(self, path: Path | str, line: int | None, field: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


def _node_at(root: yaml.Node | None, loc: tuple) -> yaml.Node | None:
    """Walk the composed YAML tree along a pydantic error location; stop at the deepest node found."""
    node = root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
            if child is None:
                # A discriminated union puts its tag (e.g. "imap") in the loc; it is not a key: skip it.
                continue
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return node
    return node


def _yaml_loc(root: yaml.Node | None, loc: tuple) -> tuple:
    """The loc without parts that are not in the YAML (union tags), except a final missing key."""
    kept, node = [], root
    for index, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            child = next((v for k, v in node.value if k.value == str(part)), None)
            if child is None and index < len(loc) - 1:
                continue
            node = child
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        kept.append(part)
    return tuple(kept)


def _field_name(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(loc))


def load_yaml_text(text: str, path: Path | str = "<string>") -> tuple[object, yaml.Node | None]:
    """Parse YAML safely, keeping the node tree for line numbers."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise RuleFileError(path, mark.line + 1 if mark else None, "", f"invalid YAML: {exc.problem}") from exc
    return data, root


def validate(model: type[M], data: object, root: yaml.Node | None, path: Path | str) -> M:
    """Validate parsed YAML; the first error is reported with its line and dotted field path."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        loc = _yaml_loc(root, loc)
        node = _node_at(root, loc)
        line = node.start_mark.line + 1 if node is not None else None
        message = first["msg"]
        if len(exc.errors()) > 1:
            message += f" (and {len(exc.errors()) - 1} more error(s))"
        raise RuleFileError(path, line, _field_name(loc), message) from exc


def load_model(path: Path, model: type[M]) -> M:
    """Read, parse (libyaml when present) and validate one YAML file; line numbers are worked out on error only."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleFileError(path, None, "", f"cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)
    except yaml.YAMLError:
        load_yaml_text(text, path)  # raises with the line
        raise
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError:
        return validate(model, data, yaml.compose(text, Loader=UniqueKeyLoader), path)


# Public names for other loaders (policy_rules/loader.py imports the underscored ones).
node_at = _node_at
field_name = _field_name
