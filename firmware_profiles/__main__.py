"""`python -m firmware_profiles`: print docs/firmware-profiles.md (rendered from the schemas);
`python -m firmware_profiles KIND NAME_OR_PATH`: check one profile and print it, defaults filled in."""

from __future__ import annotations

import json
import sys

from firmware_profiles import ProfileError, load_profile


def main(argv: list[str]) -> int:
    if not argv:
        from firmware_profiles.docs import render_docs

        sys.stdout.write(render_docs())
        return 0
    if len(argv) != 2 or argv[0].startswith("-"):
        sys.stderr.write("usage: python -m firmware_profiles [KIND NAME_OR_PATH]\n")
        return 2
    try:
        profile = load_profile(argv[0], argv[1])
    except ProfileError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write(json.dumps(profile, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
