"""A helper module, not a script: the columns of agreement.py's table (RUN/agreement.md) and the ones
levers_table.py --agreement averages over seeds. One list for both, in a module without torch, so that the markdown
reader loads no network stack."""

KEYS = (
    "K",
    "NMI(clusters, classes)",
    "NMI(K-means RGB, classes)",
    "NMI(clusters, K-means RGB)",
    "NMI(clusters, rows)",
    "NMI(clusters, columns)",
    "NMI(clusters, rings)",
    "balance classes",
    "balance clusters",
    "edges classes",
    "edges K-means RGB",
    "edges clusters",
    "image purity classes",
    "image purity clusters",
    "position purity classes",
    "position purity clusters",
)
# the edge counts, and the classes' own figures that repeat in every run's row of a set: not averaged
NOT_AVERAGED = frozenset(
    {"K", "edges classes", "edges K-means RGB", "edges clusters", "image purity classes", "position purity classes"}
)
AVERAGED = tuple(k for k in KEYS if k not in NOT_AVERAGED)
