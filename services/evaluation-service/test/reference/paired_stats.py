"""Reference values for test/compare-evaluations.test.ts, computed with SciPy.

    pip install scipy==1.14.1
    python3 services/evaluation-service/test/reference/paired_stats.py

Rebuilds the data sets of the test with the same integer generator (MINSTD: s = s * 48271 mod 2^31 - 1, exact in
both languages) and prints, per case, what CompareEvaluations must answer: pair count, means, the mean
difference (candidate - baseline) with its 95 % t interval, the statistic and the two-sided p-value, and the
Holm-Bonferroni adjusted p-values. The test holds the printed numbers as literals; run this again after changing
a data set there.
"""

import json
import math

import scipy
from scipy import stats

M = 2147483647


class Gen:
    def __init__(self, seed):
        self.s = seed

    def next(self):
        self.s = self.s * 48271 % M
        return self.s


def clamp(x, lo, hi):
    return min(hi, max(lo, x))


def single_trial(n=40, seed=7):
    """The one-trial pair: per item relevance (0..10), score (0..1), passed, toxic; baseline then candidate."""
    g = Gen(seed)
    rows = []
    for _ in range(n):
        rb = g.next() % 1001
        rc = clamp(rb + g.next() % 301 - 100, 0, 1000)
        sb = g.next() % 101
        sc = clamp(sb + g.next() % 41 - 15, 0, 100)
        pb = 1 if g.next() % 10 < 6 else 0
        pc = 1 if g.next() % 10 < 7 else 0
        tb = 1 if g.next() % 10 < 3 else 0
        tc = 1 if g.next() % 10 < 2 else 0
        # hundredths, divided once: every value is the double nearest to a 2-decimal number, which any engine
        # stores and returns unchanged
        rows.append(dict(rb=rb / 100, rc=rc / 100, sb=sb / 100, sc=sc / 100, pb=pb, pc=pc, tb=tb, tc=tc))
    return rows


def multi_trial(n=15, trials=3, seed=11):
    """The three-trial pair: per item and trial passed and relevance, baseline then candidate."""
    g = Gen(seed)
    items = []
    for _ in range(n):
        trials_b, trials_c = [], []
        for _ in range(trials):
            pb = 1 if g.next() % 10 < 5 else 0
            pc = 1 if g.next() % 10 < 7 else 0
            rb = g.next() % 1001
            rc = clamp(rb + g.next() % 201 - 60, 0, 1000)
            trials_b.append((pb, rb / 100))
            trials_c.append((pc, rc / 100))
        items.append((trials_b, trials_c))
    return items


def t_case(b, c):
    r = stats.ttest_rel(c, b)
    d = [y - x for x, y in zip(b, c)]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in d) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return dict(
        n=n,
        baselineMean=sum(b) / n,
        candidateMean=sum(c) / n,
        meanDifference=mean,
        ci95=[mean - half, mean + half],
        statistic=float(r.statistic),
        pValue=float(r.pvalue),
    )


def wilcoxon_case(b, c):
    d = [y - x for x, y in zip(b, c)]
    nonzero = [v for v in d if v != 0]
    absolute = [abs(v) for v in nonzero]
    ties = len(set(absolute)) != len(absolute)
    # exact for at most 50 differences without zeros or ties, else the normal approximation with the tie and
    # continuity corrections (what PAIRED_TEST_WILCOXON_SIGNED_RANK documents)
    exact = len(nonzero) <= 50 and len(nonzero) == len(d) and not ties
    method = "exact" if exact else "approx"
    r = stats.wilcoxon(c, b, zero_method="wilcox", correction=True, method=method)
    # W+ (the sum of the ranks of the positive differences) is the statistic of the one-sided "greater" test
    w_plus = stats.wilcoxon(c, b, zero_method="wilcox", alternative="greater", method=method).statistic
    base = t_case(b, c)
    return dict(base, statistic=float(w_plus), pValue=float(r.pvalue), method=method)


def mcnemar_case(b, c):
    lost = sum(1 for x, y in zip(b, c) if x == 1 and y == 0)
    gained = sum(1 for x, y in zip(b, c) if x == 0 and y == 1)
    p = 1.0 if lost + gained == 0 else stats.binomtest(gained, lost + gained, 0.5).pvalue
    base = t_case(b, c)
    return dict(base, statistic=float(gained), pValue=float(p), discordant=[lost, gained])


def holm(ps):
    m = len(ps)
    order = sorted(range(m), key=lambda i: (ps[i], i))
    out = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        out[i] = running
    return out


def main():
    rows = single_trial()
    col = lambda k: [r[k] for r in rows]
    single = {
        "passed": mcnemar_case(col("pb"), col("pc")),
        "score": t_case(col("sb"), col("sc")),
        "relevance": t_case(col("rb"), col("rc")),
        "toxic": mcnemar_case(col("tb"), col("tc")),
    }
    adjusted = holm([single[k]["pValue"] for k in single])
    for k, a in zip(single, adjusted):
        single[k]["adjustedPValue"] = a

    single_wilcoxon = {
        "passed": single["passed"],
        "score": wilcoxon_case(col("sb"), col("sc")),
        "relevance": wilcoxon_case(col("rb"), col("rc")),
        "toxic": single["toxic"],
    }
    single_wilcoxon = {k: dict(v) for k, v in single_wilcoxon.items()}
    adjusted = holm([single_wilcoxon[k]["pValue"] for k in single_wilcoxon])
    for k, a in zip(single_wilcoxon, adjusted):
        single_wilcoxon[k]["adjustedPValue"] = a

    items = multi_trial()
    mean = lambda xs: sum(xs) / len(xs)
    pass_b = [mean([t[0] for t in b]) for b, _ in items]
    pass_c = [mean([t[0] for t in c]) for _, c in items]
    rel_b = [mean([t[1] for t in b]) for b, _ in items]
    rel_c = [mean([t[1] for t in c]) for _, c in items]
    multi = {"passed": t_case(pass_b, pass_c), "relevance": t_case(rel_b, rel_c)}

    # Wilcoxon's exact distribution: 12 distinct non-zero differences
    exact_b = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0]
    exact_c = [1.5, 1.7, 3.9, 5.1, 4.2, 7.3, 7.6, 9.4, 8.05, 11.8, 12.35, 11.95]
    exact = wilcoxon_case(exact_b, exact_c)

    print(
        json.dumps(
            {
                "scipy": scipy.__version__,
                "single": single,
                "singleWilcoxon": single_wilcoxon,
                "multi": multi,
                "wilcoxonExact": exact,
            },
            indent=2,
        )
    )


main()
