"""Regenerate llm_mem/data/models/ and llm_mem/data/registry.json.

    python scripts/bundle_configs.py [--shared ../shared/reference/hf-configs]

Copies every real config under the shared reference folder (preferring the downloaded
`config.json` over reconstructed variants) and writes the extra configs defined in
scripts/extra_configs.py. Provenance is kept per model: "downloaded" or how it was rebuilt.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "llm_mem" / "data"
PREFERENCE = ["config.json", "config.sibling_", "config.from_mlc_preset", "config.derived_resave",
              "config.transformers_defaults", "config.older_revision"]


def alias_for(repo: str) -> list[str]:
    name = repo.split("/", 1)[1].lower()
    out = {name}
    out.add(re.sub(r"^meta-llama-", "llama-", name))
    out.add(name.replace("-hf", ""))
    return sorted(a for a in out if a)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=str(ROOT.parent / "shared" / "reference" / "hf-configs"))
    args = ap.parse_args()
    models = DATA / "models"
    shutil.rmtree(models, ignore_errors=True)
    models.mkdir(parents=True)
    entries = []
    for d in sorted(Path(args.shared).iterdir()):
        files = list(d.glob("config*.json"))
        if not files:
            continue
        files.sort(key=lambda f: next(i for i, p in enumerate(PREFERENCE) if f.name.startswith(p)))
        f = files[0]
        repo = d.name.replace("__", "/", 1)
        shutil.copy(f, models / f"{d.name}.json")
        prov = "downloaded" if f.name == "config.json" else f.name.removeprefix("config.").removesuffix(".json")
        entries.append({"id": repo, "file": f"{d.name}.json", "provenance": prov})
    import extra_configs

    for repo, cfg, prov in extra_configs.EXTRA:
        fname = repo.replace("/", "__") + ".json"
        (models / fname).write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
        entries.append({"id": repo, "file": fname, "provenance": prov})
    for e in entries:
        e["also"] = extra_configs.SAME_ARCHITECTURE.get(e["id"], [])
        e["aliases"] = sorted(set(alias_for(e["id"])) | set(extra_configs.ALIASES.get(e["id"], [])))
    entries.sort(key=lambda e: e["id"].lower())
    (DATA / "registry.json").write_text(json.dumps(entries, indent=1) + "\n")
    print(f"{len(entries)} models bundled")


if __name__ == "__main__":
    main()
