"""``evalharness bless RUN --as NAME --store URL``: record a released baseline by name."""

from __future__ import annotations

import argparse
import json


def _bless(args: argparse.Namespace) -> int:
    from evalharness.records.baselines import bless

    blessed = bless(args.run, name=args.name, store=args.store, replace=args.replace, who=args.who)
    if args.json:
        print(json.dumps({"url": blessed.url, "provenance": blessed.provenance}, indent=2, ensure_ascii=False))
        return 0
    provenance = blessed.provenance
    print(f"blessed {provenance['model']} (run {provenance['run_id']}) as '{provenance['name']}': {blessed.url}")
    print(f"  by {provenance['blessed_by']} at {provenance['blessed_at']}, record sha256 {provenance['record_sha256'][:16]}..., "
          f"{len(provenance['files'])} files verified")
    if blessed.superseded:
        print(f"  the previous '{provenance['name']}' was moved to {blessed.superseded}")
    print(f"  gate against it with: evalharness gate --baseline {provenance['name']}@{args.store} ...")
    return 0


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bless = commands.add_parser(
        "bless",
        help="record a run as a released baseline NAME in a store (any fsspec URL), with its provenance",
        description="Copy a run (record, samples, noise.json) to STORE/NAME/ and write provenance.json (who, when, source, "
        "SHA-256 of every file). `evalharness gate --baseline NAME@STORE` then gates against it, verifying every file.",
    )
    bless.add_argument("run", metavar="RUN", help="run directory to bless")
    bless.add_argument("--as", dest="name", required=True, metavar="NAME", help="baseline name, e.g. release-1.4 or last-release")
    bless.add_argument("--store", required=True, metavar="URL", help="where baselines live: a folder, file://, s3://, gs://, hf://, memory://")
    bless.add_argument("--replace", action="store_true", help="supersede an existing NAME (it is kept under STORE/.history/NAME/)")
    bless.add_argument("--who", help="who blesses it (default: $GITHUB_ACTOR or the user name)")
    bless.add_argument("--json", action="store_true", help="print the provenance as JSON")
    bless.set_defaults(handler=_bless)
