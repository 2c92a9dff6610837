"""Validates OCSF events (JSON Lines) against the official OCSF 1.3.0 schema.

The schema comes from PyPI `ocsf-json-schema` at run time (the package bundles
each release's schema as schema.ocsf.io exports it), so none of it is copied
into Ward. Each line is checked against the JSON Schema of its `class_uid`
(compiled by that package: types, enums, regexes, required attributes, no
unknown attributes, `at_least_one`/`just_one` constraints), then against the
rules the OCSF server's validator adds on top, which JSON Schema cannot say:
`type_uid` is `class_uid * 100 + activity_id`, `metadata.version` is the
schema's, an enum's caption sibling matches its value (for 99, "Other", it
holds the source's own word instead), and nothing deprecated is used.

Usage: ocsf_validate.py EVENTS.jsonl...
Prints one line per problem and a summary per file. Exits 1 if any event is
invalid (or a file holds none), 77 (the usual "skipped" code) if the Python
packages are not installed.
"""

import json
import sys
from collections import Counter

VERSION = "1.3.0"

try:
    import jsonschema
    from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema
except ImportError as e:
    print(f"missing Python package ({e}); pip install ocsf-json-schema jsonschema")
    sys.exit(77)


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: ocsf_validate.py EVENTS.jsonl...")
    schema = get_ocsf_schema(VERSION)
    embedded = OcsfJsonSchemaEmbedded(schema)
    validators = {}
    failed = False
    for path in sys.argv[1:]:
        total = 0
        invalid = 0
        missing_recommended = Counter()
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                total += 1
                problems, missing = check(schema, embedded, validators, line)
                for p in missing:
                    missing_recommended[p] += 1
                if problems:
                    invalid += 1
                    for p in problems:
                        print(f"{path}:{number}: {p}")
        for attribute, count in sorted(missing_recommended.items()):
            print(f"note: recommended {attribute} absent from {count} events")
        print(f"{path}: OCSF {VERSION}: {total - invalid} of {total} events valid")
        failed = failed or invalid > 0 or total == 0
    sys.exit(1 if failed else 0)


def check(schema, embedded, validators, line):
    """The problems of one event, and the recommended attributes it lacks."""
    try:
        event = json.loads(line)
    except ValueError as e:
        return [f"not JSON: {e}"], []
    if not isinstance(event, dict):
        return ["not a JSON object"], []
    label = f"{event.get('message')!r} (class_uid {event.get('class_uid')!r})"
    try:
        name = embedded.lookup_class_name_from_uid(event.get("class_uid"))
    except (ValueError, TypeError):
        return [f"{label}: unknown class_uid"], []
    if name not in validators:
        validators[name] = jsonschema.Draft202012Validator(embedded.get_class_schema(name))
    problems = [
        f"{label}: {'.'.join(map(str, e.absolute_path)) or '(event)'}: {describe(e)}"
        for e in validators[name].iter_errors(event)
    ]
    activity, class_uid = event.get("activity_id"), event.get("class_uid")
    if isinstance(activity, int) and event.get("type_uid") != class_uid * 100 + activity:
        problems.append(f"{label}: type_uid is not class_uid * 100 + activity_id")
    if (event.get("metadata") or {}).get("version") != VERSION:
        problems.append(f"{label}: metadata.version is not {VERSION}")
    missing = []
    walk(schema, schema["classes"][name], event, "", problems, missing, label)
    return problems, missing


def describe(error):
    """A schema error in one short line (the library's repeats the whole event
    for a failed constraint)."""
    if error.validator in ("anyOf", "oneOf"):
        names = [", ".join(s.get("required", [])) for s in error.validator_value]
        need = "at least one" if error.validator == "anyOf" else "exactly one"
        return f"needs {need} of: {'; '.join(names)}"
    return error.message if len(error.message) <= 300 else error.message[:300] + "..."


def walk(schema, definition, item, path, problems, missing, label):
    """The server's checks that JSON Schema leaves out, through nested objects."""
    attributes = definition.get("attributes", {})
    for key, attr in attributes.items():
        if attr.get("profile"):
            continue  # Ward's events use no profiles
        where = f"{path}{key}"
        if key not in item:
            if attr.get("requirement") == "recommended":
                missing.append(where)
            continue
        value = item[key]
        if "@deprecated" in attr:
            problems.append(f"{label}: {where} is deprecated")
        enum, sibling = attr.get("enum"), attr.get("sibling")
        if enum and sibling and sibling in item and str(value) in enum:
            caption = enum[str(value)].get("caption")
            if value == 99 and item[sibling] == caption:
                problems.append(
                    f"{label}: {path}{sibling} says {caption!r} for 99; "
                    "it should name the source's own value"
                )
            elif value != 99 and item[sibling] != caption:
                problems.append(
                    f"{label}: {path}{sibling} is {item[sibling]!r}, "
                    f"the caption of {where} {value} is {caption!r}"
                )
        if attr.get("type") == "object_t":
            obj = schema["objects"].get(attr.get("object_type"), {})
            for i, element in enumerate(value if isinstance(value, list) else [value]):
                if isinstance(element, dict) and obj.get("attributes"):
                    index = f"[{i}]" if isinstance(value, list) else ""
                    walk(schema, obj, element, f"{where}{index}.", problems, missing, label)


if __name__ == "__main__":
    main()
