"""Pairs of 64-bit perceptual hashes at most d bits apart, and the groups that pairs make
(`data.duplicates`' near-duplicates and copies).

The pair search is not O(N^2): identical hashes are bucketed first; then, by pigeonhole,
two hashes within d bits agree exactly on at least one of d + 1 slices of the 64 bits, so
only hashes that share a slice value are compared, vectorised (sorting plus the pairs
within each slice's buckets: for AVA's 255,000 photos and d = 4, five sorts and about
20 million XOR-popcounts for spread hashes, a few seconds).
"""

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

HASH_BITS = 64


def near_pairs(hashes: np.ndarray, distance: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, d) with i < j: the pairs of uint64 `hashes` at most `distance` bits apart.

    Equal hashes are linked to the first of theirs (a star, not every pair), and distinct
    values within `distance` through those first photos: enough to connect and to tell each
    photo's near twin, in output linear in the photos.
    """
    hashes = np.asarray(hashes, np.uint64)
    values, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    star = np.flatnonzero(first[inverse] != np.arange(len(hashes)))
    out = [(first[inverse[star]], star, np.zeros(len(star), np.int64))]
    if distance > 0 and len(values) > 1:
        a, b = _close_values(values, distance)
        d = np.bitwise_count(values[a] ^ values[b]).astype(np.int64)
        i, j = first[a], first[b]
        out.append((np.minimum(i, j), np.maximum(i, j), d))
    i, j, d = (np.concatenate(parts).astype(np.int64) for parts in zip(*out, strict=True))
    order = np.lexsort((j, i))
    return i[order], j[order], d[order]


def _close_values(values: np.ndarray, distance: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (a, b), a < b, of distinct sorted `values` at most `distance` bits apart."""
    slices = distance + 1
    bounds = np.linspace(0, HASH_BITS, slices + 1).astype(np.uint64)
    found = []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        mask = np.uint64((1 << int(hi - lo)) - 1)
        part = (values >> lo) & mask
        order = np.argsort(part, kind="stable")
        ordered = part[order]
        run = np.flatnonzero(ordered[1:] == ordered[:-1])  # i whose next shares the slice
        step = 1
        while len(run):  # pairs (k, k + step) within one bucket; the set only shrinks
            a, b = order[run], order[run + step]
            close = np.bitwise_count(values[a] ^ values[b]) <= distance
            found.append(np.stack([np.minimum(a, b)[close], np.maximum(a, b)[close]]))
            step += 1
            run = run[run + step < len(ordered)]
            run = run[ordered[run + step] == ordered[run]]
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    pairs = np.unique(np.concatenate(found, axis=1), axis=1)
    return pairs[0], pairs[1]


def first_of_equal(values: np.ndarray) -> np.ndarray:
    """int64 [N]: the position of the first element equal to each one."""
    _, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    return first[inverse.reshape(-1)].astype(np.int64)


def components(n: int, edges: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """int64 [N]: each node's component, named by its first node."""
    rows = np.concatenate([np.asarray(a, np.int64) for a, _ in edges])
    cols = np.concatenate([np.asarray(b, np.int64) for _, b in edges])
    graph = scipy.sparse.coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n))
    _, labels = scipy.sparse.csgraph.connected_components(graph, directed=False)
    first = np.full(labels.max() + 1 if n else 0, n, np.int64)
    np.minimum.at(first, labels, np.arange(n))
    return first[labels]
