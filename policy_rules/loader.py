"""Load escalation rules, their examples, named conditions and lexicons from YAML; a bad file fails naming file,
line and field."""

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from core.grounding import LEXICON_PATH as GROUNDING_DRUGS
from core.grounding import load_lexicon as load_grounding_drugs
from policy_rules.example_schema import RuleExamples
from policy_rules.lexicon_schema import Lexicon, TermGroup
from policy_rules.rule_schema import (
    CONDITION_NAMES,
    LexiconCondition,
    NamedCondition,
    NearCondition,
    QuestionCondition,
    RefCondition,
    Rule,
    walk_conditions,
)
from policy_rules.yaml_errors import RuleFileError, UniqueKeyLoader, _field_name, _node_at, load_yaml_text

M = TypeVar("M", bound=BaseModel)
HERE = Path(__file__).resolve().parent
RULES_DIR = HERE / "escalation"
LEXICON_DIR = HERE / "lexicons"
CONDITIONS_DIR = HERE / "conditions"
SCHEMA_DIR = HERE / "schemas"
EXAMPLES_SUFFIX = ".examples.yaml"
MEDICINE_NAMES = "medicine_names"


@dataclass(frozen=True)
class Policy:
    """Validated rules, lexicons and named conditions, cross-checked: every lexicon and named condition a rule
    names exists, and no named condition refers back to itself."""

    rules: tuple[Rule, ...]
    lexicons: tuple[Lexicon, ...]
    conditions: tuple[NamedCondition, ...] = ()


def _clean_loc(loc: tuple) -> tuple:
    """Drop the union tags pydantic puts in front of a condition's own key ('any', 'any', 0 → 'any', 0)."""
    out: list = []
    for index, part in enumerate(loc):
        nxt = loc[index + 1] if index + 1 < len(loc) else None
        if isinstance(part, str) and part == nxt and part in CONDITION_NAMES:
            continue
        if isinstance(part, str) and part.startswith("function-"):
            continue
        out.append(part)
    return tuple(out)


def _fail(path: Path, text: str, loc: tuple, message: str) -> RuleFileError:
    """The error at the line of `loc`; the node tree is only composed when something is wrong."""
    node = _node_at(yaml.compose(text, Loader=UniqueKeyLoader), loc)
    line = node.start_mark.line + 1 if node is not None else None
    return RuleFileError(path, line, _field_name(loc), message)


def _load(path: Path, model: type[M]) -> tuple[M, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleFileError(path, None, "", f"cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.load(text, Loader=UniqueKeyLoader)  # libyaml: start-up time matters for the CLI
    except yaml.YAMLError:
        load_yaml_text(text, path)  # raises the error with its line
        raise
    try:
        return model.model_validate(data if data is not None else {}), text
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        message = first["msg"] + (f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else "")
        raise _fail(path, text, _clean_loc(first["loc"]), message) from exc


def _lexicon_refs(cond, loc: tuple) -> list[tuple[tuple, str]]:
    """Every lexicon name a condition tree mentions, with its location in the file."""
    refs: list[tuple[tuple, str]] = []
    for node, at in walk_conditions(cond, loc):
        if isinstance(node, LexiconCondition):
            refs.append((at + ("lexicon", "name"), node.lexicon.name))
        elif isinstance(node, NearCondition):
            refs += [(at + ("near", side, i), name) for side in ("left", "right", "unless_in_sentence")
                     for i, name in enumerate(getattr(node.near, side))]
        elif isinstance(node, QuestionCondition):
            refs += [(at + ("question", side, i), name) for side in ("about", "unless_in_sentence")
                     for i, name in enumerate(getattr(node.question, side))]
    return refs


def _condition_refs(cond, loc: tuple) -> list[tuple[tuple, str]]:
    """Every named condition a condition tree refers to, with its location in the file."""
    return [(at + ("ref",), node.ref) for node, at in walk_conditions(cond, loc) if isinstance(node, RefCondition)]


def _check_names(path: Path, text: str, trees: list[tuple[object, tuple]], lexicon_ids: set[str],
                 condition_ids: set[str]) -> None:
    """Fail at the first lexicon or named condition that does not exist."""
    for cond, loc in trees:
        for at, name in _lexicon_refs(cond, loc):
            if name not in lexicon_ids:
                raise _fail(path, text, at, f"unknown lexicon {name!r}; known: {', '.join(sorted(lexicon_ids))}")
        for at, name in _condition_refs(cond, loc):
            if name not in condition_ids:
                known = ", ".join(sorted(condition_ids)) or f"none (no files in {CONDITIONS_DIR.name}/)"
                raise _fail(path, text, at, f"unknown named condition {name!r}; known: {known}")


def medicine_names() -> Lexicon:
    """The grounding verifier's medicine list as a lexicon: one list of names serves both."""
    drugs = load_grounding_drugs(GROUNDING_DRUGS)
    return Lexicon(
        id=MEDICINE_NAMES, title="Medicine names (shared with the grounding verifier)",
        description="Generic and brand names of common medicines, and INN stems such as -sartan or -prazole.",
        sources=[f"policy_rules/lexicons/{GROUNDING_DRUGS.name}"], negatable=False,
        groups=[TermGroup(name="names", lang="any", terms=list(drugs.names)),
                TermGroup(name="stems", lang="any", fuzzy=False, terms=[f"*{stem}" for stem in drugs.stems])],
    )


def load_lexicons(directory: Path = LEXICON_DIR) -> list[Lexicon]:
    """Every lexicon file of a folder (the id must match the file name), plus the shared medicine names."""
    lexicons = [medicine_names()]
    for path in sorted(directory.glob("*.yaml")):
        if path.name == GROUNDING_DRUGS.name:  # a different schema, owned by core/grounding.py
            continue
        lexicon, text = _load(path, Lexicon)
        if lexicon.id != path.stem:
            raise _fail(path, text, ("id",), f"id {lexicon.id!r} must match the file name {path.stem!r}")
        lexicons.append(lexicon)
    for kind in ("negation", "question_starters"):
        found = [lex.id for lex in lexicons if lex.kind == kind]
        if len(found) > 1:
            raise RuleFileError(directory, None, "kind", f"only one {kind} lexicon allowed, found {found}")
    return lexicons


def rule_files(directory: Path = RULES_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if not p.name.endswith(EXAMPLES_SUFFIX))


def load_conditions(directory: Path, lexicon_ids: set[str]) -> list[NamedCondition]:
    """Every named condition of a folder (the id must match the file name); what they name must exist, and no
    chain of refs may lead back to where it started. A missing folder holds no conditions."""
    loaded: dict[str, tuple[NamedCondition, Path, str]] = {}
    for path in sorted(directory.glob("*.yaml")):
        cond, text = _load(path, NamedCondition)
        if cond.id != path.stem:
            raise _fail(path, text, ("id",), f"id {cond.id!r} must match the file name {path.stem!r}")
        loaded[cond.id] = (cond, path, text)
    for cond, path, text in loaded.values():
        _check_names(path, text, [(cond.when, ("when",))], lexicon_ids, set(loaded))
    done: set[str] = set()

    def visit(name: str, chain: list[str]) -> None:
        cond, path, text = loaded[name]
        for at, ref in _condition_refs(cond.when, ("when",)):
            if ref in chain or ref == name:
                start = chain[chain.index(ref):] if ref in chain else []
                cycle = " -> ".join([*start, name, ref])
                raise _fail(path, text, at, f"named conditions refer to each other in a cycle: {cycle}")
            if ref not in done:
                visit(ref, [*chain, name])
        done.add(name)

    for name in loaded:
        if name not in done:
            visit(name, [])
    return [cond for cond, _, _ in loaded.values()]


def load_rules(directory: Path, lexicon_ids: set[str], condition_ids: set[str] | None = None) -> list[Rule]:
    """Every rule file of a folder; ids are unique and match file names; lexicons and named conditions must
    exist (condition_ids None: the files of the default conditions folder)."""
    if condition_ids is None:
        condition_ids = {path.stem for path in CONDITIONS_DIR.glob("*.yaml")}
    rules: list[Rule] = []
    for path in rule_files(directory):
        rule, text = _load(path, Rule)
        if rule.id != path.stem:
            raise _fail(path, text, ("id",), f"id {rule.id!r} must match the file name {path.stem!r}")
        trees = [(rule.when, ("when",))] + ([] if rule.unless is None else [(rule.unless, ("unless",))])
        _check_names(path, text, trees, lexicon_ids, condition_ids)
        rules.append(rule)
    if not rules:
        raise RuleFileError(directory, None, "", "no escalation rule files found")
    return rules


def load_examples(path: Path) -> RuleExamples:
    examples, text = _load(path, RuleExamples)
    expected = path.name[: -len(EXAMPLES_SUFFIX)]
    if examples.rule != expected:
        raise _fail(path, text, ("rule",), f"rule {examples.rule!r} must match the file name {expected!r}")
    return examples


def load_policy(rules_dir: Path | None = None, lexicon_dir: Path | None = None,
                required_lexicons: tuple[str, ...] = (), conditions_dir: Path | None = None) -> Policy:
    """Lexicons, named conditions and rules, validated and cross-checked (reloading is just calling this again)."""
    lexicons = load_lexicons(lexicon_dir or LEXICON_DIR)
    ids = {lex.id for lex in lexicons}
    missing = [name for name in required_lexicons if name not in ids]
    if missing:
        raise RuleFileError(lexicon_dir or LEXICON_DIR, None, "", f"required lexicon(s) missing: {missing}")
    conditions = load_conditions(conditions_dir or CONDITIONS_DIR, ids)
    rules = load_rules(rules_dir or RULES_DIR, ids, {cond.id for cond in conditions})
    return Policy(tuple(rules), tuple(lexicons), tuple(conditions))


# Generated JSON Schemas (for editors and reviewers); a test keeps the committed files current.
SCHEMA_FILES: dict[str, type[BaseModel]] = {
    "escalation-rule.schema.json": Rule,
    "escalation-rule-examples.schema.json": RuleExamples,
    "named-condition.schema.json": NamedCondition,
    "lexicon.schema.json": Lexicon,
}


def schema_text(model: type[BaseModel]) -> str:
    """The JSON Schema of a model, as committed (sorted keys, trailing newline)."""
    return json.dumps(model.model_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def export_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    """Write every schema file (python -m policy_rules.loader); returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in SCHEMA_FILES.items():
        path = directory / name
        path.write_text(schema_text(model), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for written in export_schemas():
        logging.getLogger(__name__).info("wrote %s", written)
