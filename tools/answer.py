"""'Does RSRL help?' from one command per part: its studies, then the docs' snippets from them.

  python tools/answer.py --part=embeddings   # 3 strengths x 3 noise levels x 10 seeds x 5 folds
  python tools/answer.py --part=photos       # the demo's photos (3 seeds, 3 noise levels)
  python tools/answer.py --part=embeddings --render   # the snippets from finished studies only

`embeddings` runs one `python -m rsrl_jax.study` per feature strength of
data.name=synthetic_embeddings into runs/answer_embeddings/<strength>/ (each resumable: the
same command carries on and reuses finished runs); `photos` runs one over the demo's photos
into runs/answer_photos/. Flags it does not know (`--config.rsrl.rounds=6`) go to every study.
Then it writes, from the studies' study.json (`answer_render`), docs/generated/answer_<part>.md
(included by docs/study.md) and, for embeddings, docs/generated/answer_readme.md, whose text
also replaces README.md's paragraph between its `answer:` markers: the docs and the README
quote the studies number for number, never by hand.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import answer_render  # noqa: E402  (tools/ is no package)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "generated")
README = os.path.join(ROOT, "README.md")
BEGIN, END = "<!-- answer:begin -->", "<!-- answer:end -->"
PHOTOS_BEGIN, PHOTOS_END = "<!-- answer-photos:begin -->", "<!-- answer-photos:end -->"

METHODS = answer_render.METHODS
STRENGTHS = ("weak", "medium", "strong")
PARTS = {
    "embeddings": {
        "config": "configs/synthetic_embeddings.py",
        "seeds": ",".join(map(str, range(10))),
        "workdir": "runs/answer_embeddings",
    },
    "photos": {"config": "configs/demo.py", "seeds": "0,1,2", "workdir": "runs/answer_photos"},
}


def study_commands(part: str, args, extra: list[str]) -> list[tuple[str, list[str]]]:
    """(label, argv) of each study the part runs: one per strength, or one for the photos."""
    spec = PARTS[part]
    common = [
        f"--config={spec['config']}",
        f"--seeds={args.seeds or spec['seeds']}",
        f"--label_noise={args.label_noise}",
        "--folds=5" if part == "embeddings" else "--folds=1",
        f"--methods={args.methods}",
    ]
    if part == "photos":
        return [("photos", [*common, f"--workdir={spec['workdir']}", *extra])]
    return [
        (
            s,
            [
                *common[:1],
                f"--config.data.feature_strength={s}",
                *common[1:],
                f"--workdir={spec['workdir']}/{s}",
                *extra,
            ],
        )
        for s in args.strengths.split(",")
    ]


def run_studies(commands) -> None:
    for label, argv in commands:
        print(f"running ({label}): python -m rsrl_jax.study {shlex.join(argv)}", flush=True)
        subprocess.run([sys.executable, "-m", "rsrl_jax.study", *argv], cwd=ROOT, check=True)


def studies(part: str) -> dict[str, dict]:
    """label -> study.json of the part's finished studies (strengths in their order)."""
    base = os.path.join(ROOT, PARTS[part]["workdir"])
    paths = (
        {s: os.path.join(base, s, "study.json") for s in STRENGTHS}
        if part == "embeddings"
        else {"photos": os.path.join(base, "study.json")}
    )
    out = {}
    for label, path in paths.items():
        if os.path.exists(path):
            with open(path) as f:
                out[label] = json.load(f)
    return out


def write(name: str, text: str) -> None:
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name), "w") as f:
        f.write(text)
    print(f"wrote docs/generated/{name}")


def replace_readme(paragraph: str, begin: str = BEGIN, end: str = END) -> None:
    """README.md's text between the markers `begin` and `end`, replaced (the markers stay)."""
    with open(README) as f:
        text = f.read()
    if begin not in text or end not in text:
        print(f"README.md has no {begin} ... {end}: left as it stands")
        return
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(README, "w") as f:
        f.write(f"{head}{begin}\n{paragraph.strip()}\n{end}{tail}")
    print(f"wrote README.md's paragraph between {begin} and {end}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=sorted(PARTS), required=True)
    parser.add_argument("--seeds", default=None, help="default: 0-9 (embeddings), 0,1,2 (photos)")
    parser.add_argument("--label_noise", default="0.1,0.5,1.0")
    parser.add_argument("--strengths", default=",".join(STRENGTHS), help="embeddings only")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--render", action="store_true", help="only the snippets, no study")
    args, extra = parser.parse_known_args(argv)
    bad = [a for a in extra if not a.startswith("--config.")]
    if bad:
        parser.error(f"unknown flag(s) {bad}: only --config.FIELD=VALUE goes to the studies")
    for s in args.strengths.split(","):
        if s not in STRENGTHS:
            parser.error(f"--strengths: {s!r} is not one of {', '.join(STRENGTHS)}")
    if not args.render:
        run_studies(study_commands(args.part, args, extra))
    found = studies(args.part)
    if not found:
        print(f"no study.json under {PARTS[args.part]['workdir']}: nothing to render")
        return 1
    if args.part == "embeddings":
        write("answer_embeddings.md", answer_render.embeddings_page(found))
        paragraph = answer_render.readme_paragraph(found)
        write("answer_readme.md", paragraph)
        link = "The tables, the selection diagnostics and the budget: [The study](docs/study.md)."
        replace_readme(answer_render.strip_source(paragraph).rstrip("\n") + " " + link)
    else:
        write("answer_photos.md", answer_render.photos_page(found["photos"]))
        link = "Its table: [The study](docs/study.md)."
        paragraph = answer_render.photos_paragraph(found["photos"])
        replace_readme(f"{paragraph} {link}", PHOTOS_BEGIN, PHOTOS_END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
