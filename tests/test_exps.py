"""`cifarpipe exps` on made-up `dvc exp show --json` output: the verdict first, only the params that changed,
a table that fits the terminal and names what did not fit."""
from cifarpipe.tools.exps import changed_params, rows_of, table


def entry(rev, name, params, verdict=None):
    metrics = {"metrics/verdict.json": {"data": verdict}} if verdict else {}
    return {"rev": rev, "name": name, "data": {"params": {"params.yaml": {"data": params}},
                                               "metrics": metrics}}


def verdict(acc, half=None, seeds=1, word="not met (1 seed)"):
    return {"test_acc": acc, "test_acc_ci": half, "seeds": seeds, "verdict": word, "seeds_met": 0,
            "test_loss": 1.25, "train_s": 12.5, "lr_max": 0.005, "lr_min": 5e-5, "corrupt_acc": 0.7,
            "corrupt_acc_ci": None, "ece": 0.031, "ece_ci": None}


DEFAULTS = {"data": {"train_subset": None}, "optim": {"lr": None, "name": "adam"}, "schedule": {"epochs": 24}}
QUICK = {"data": {"train_subset": 5000}, "optim": {"lr": None, "name": "adam"}, "schedule": {"epochs": 2}}


def shown(*experiments):
    return [entry("workspace", None, experiments[-1]["data"]["params"]["params.yaml"]["data"]),
            {**entry("a" * 40, "main", DEFAULTS), "experiments": [{"revs": [e]} for e in experiments]}]


def test_two_experiments_show_only_the_param_they_differ_in_and_the_commit_none_of_its_own():
    quick = entry("b" * 40, "quick-look", QUICK, verdict(0.441))
    lr = entry("c" * 40, "lr-005", {**QUICK, "optim": {"lr": 0.005, "name": "adam"}},
               verdict(0.9012, 0.0021, 5, "met"))
    rows = rows_of(shown(quick, lr))
    assert [r["name"] for r in rows] == ["workspace", "main", "└ quick-look", "└ lr-005"]
    # schedule.epochs differs from main's, but not between the two
    assert changed_params(rows) == ["optim.lr"]
    text = table(rows, 120)
    lines = text.splitlines()
    assert lines[0].split() == ["Experiment", "test", "acc", "±", "95%", "seeds", "verdict", "vs", "base",
                                "corrupted", "ECE", "train", "s", "LRMAX", "optim.lr"]
    assert "└ lr-005" in lines[-1] and "90.12%" in lines[-1] and " ±0.21 " in lines[-1]
    assert " met " in lines[-1]
    assert "no results" in lines[3]  # main: nothing computed at that commit


def test_one_experiment_shows_what_it_changed_from_its_commit():
    rows = rows_of(shown(entry("b" * 40, "quick-look", QUICK, verdict(0.441))))
    assert changed_params(rows) == ["data.train_subset", "schedule.epochs"]


def test_params_that_do_not_fit_are_named_below_the_table_never_cut():
    wide = {**QUICK, "optim": {"lr": 0.005, "name": "sgd"}, "schedule": {"epochs": 3}}
    rows = rows_of(shown(entry("b" * 40, "quick-look", QUICK, verdict(0.441)), entry("c" * 40, "x", wide,
                                                                                     verdict(0.45))))
    assert changed_params(rows) == ["optim.lr", "optim.name", "schedule.epochs"]
    narrow = table(rows, 115)
    assert max(len(line) for line in narrow.splitlines()) <= 115 and "…" not in narrow
    in_header = narrow.splitlines()[0].split("LRMAX")[1].split()
    hidden = narrow.splitlines()[-1]
    assert hidden.startswith("also changed, not shown in 115 columns: ")
    named = hidden.split(": ")[1].split(", ")
    assert named and not set(named) & set(in_header)
    assert set(named) | set(in_header) == {"optim.lr", "optim.name", "schedule.epochs"}


def test_each_experiment_is_compared_with_its_commit_in_a_word():
    """Welch's test on the two rows' summaries (mean, sd, seeds), equivalence within noise.margin.test_acc
    (0.5 points): the words by hand, from scipy."""
    from scipy import stats

    from cifarpipe.core.params import load_params
    from conftest import PARAMS_YAML

    noise = load_params(PARAMS_YAML).noise
    main = {**verdict(0.900, 0.002, 5, "met"), "test_acc_std": 0.0016}
    runs = {"higher": (0.910, 0.0016, 5), "lower": (0.890, 0.0016, 5), "same": (0.9002, 0.0008, 5),
            "noisy": (0.905, 0.03, 2)}
    experiments = [entry(str(i) * 40, name, QUICK, {**verdict(m, None, n, "met"), "test_acc_std": sd})
                   for i, (name, (m, sd, n)) in enumerate(runs.items(), 1)]
    shown_ = [entry("workspace", None, QUICK), {**entry("a" * 40, "main", DEFAULTS, main),
                                                 "experiments": [{"revs": [e]} for e in experiments]}]
    lines = {line.split()[1]: line for line in table(rows_of(shown_), 120, noise).splitlines() if "└" in line}
    for name, (m, sd, n) in runs.items():
        p = stats.ttest_ind_from_stats(m, sd, n, 0.900, 0.0016, 5, equal_var=False).pvalue
        low = stats.ttest_ind_from_stats(m + 0.005, sd, n, 0.900, 0.0016, 5, equal_var=False,
                                         alternative="greater").pvalue
        high = stats.ttest_ind_from_stats(m - 0.005, sd, n, 0.900, 0.0016, 5, equal_var=False,
                                          alternative="less").pvalue
        word = ("better" if m > 0.9 else "worse") if p < 0.05 else "equivalent" if max(low, high) < 0.05 \
            else "undecided"
        assert f" {word} " in lines[name], (name, word, lines[name])
    assert [w for w in ("better", "worse", "equivalent", "undecided") if any(f" {w} " in x for x in lines.values())
            ] == ["better", "worse", "equivalent", "undecided"]


def test_an_lrmax_read_by_the_fallback_rule_is_marked_and_said_below():
    quick = entry("b" * 40, "smoke", QUICK, {**verdict(0.1), "lr_rule": "valley (fallback)", "lr_max": 0.0117})
    text = table(rows_of(shown(quick)), 120)
    assert "0.0117†" in next(line for line in text.splitlines() if "└ smoke" in line)
    assert text.splitlines()[-1].startswith("† LRMAX read by the valley rule: the loss was still falling")
