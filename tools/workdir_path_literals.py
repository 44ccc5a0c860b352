"""The package's and the benchmarks' modules (all but workdir_files.py) whose code, not their
docstrings, holds a workdir's file or folder name as a string: the places that build a
workdir's paths themselves instead of asking `rsrl_jax.workdir_files` (issue 32, item 2).

    python tools/workdir_path_literals.py [TREE]   # TREE: a checkout, default this one

Some hits are messages or other folders' files; read the names it prints.
"""

import ast
import pathlib
import re
import sys

FILES = (
    r"metrics\.jsonl|timings\.jsonl|config\.json|classes\.json|summary\.json|"
    r"data_identity\.npz|skipped\.jsonl|duplicates\.json|log\.txt|\.lock|\.lock\.json|"
    r"report|report\.md|tensorboard|in_progress|folds_in_progress|lanes_in_progress|"
    r"\.dropped|study\.(json|md|png)|compare\.(json|md|png)"
)
PARTS = r"fold_|noise_|seed_|highlights_fold|highlight_eval_fold|round_\(|step_\("
NAMES = re.compile(rf"^({FILES})$|{PARTS}")
SKIPPED = ("rsrl_jax/workdir_files.py",)


def docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def literals(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docs = docstrings(tree)
    return sorted(
        {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docs
            and NAMES.search(node.value)
        }
    )


def main(tree: pathlib.Path) -> None:
    hits = 0
    paths = [p for folder in ("rsrl_jax", "benchmarks") for p in (tree / folder).rglob("*.py")]
    for path in sorted(paths):
        name = path.relative_to(tree).as_posix()
        if name.startswith(SKIPPED):
            continue
        found = literals(path)
        if found:
            hits += 1
            print(name, found)
    print(hits, "modules")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parent.parent))
