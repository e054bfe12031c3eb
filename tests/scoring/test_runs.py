"""Scoring runs end to end: scores, segments, lifecycle and dashboard figures as computed by hand, failures that leave
the previous run in place, reproducibility, fallback parameters, stale runs, pruning and the nightly schedule."""

from datetime import datetime, time, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.utils import timezone

from crm.models import Client, ClientChange, Lifecycle, Purchase, Source
from crm.services import client_lifecycle_apply
from portfolio.schedules import BEAT_SCHEDULE
from scoring import io as scoring_io
from scoring import services, tasks
from scoring.bgnbd import BgNbdParams, fit_bgnbd
from scoring.clv import predictive_clv
from scoring.dashboard import dashboard_aggregates
from scoring.gamma_gamma import GammaGammaParams
from scoring.models import ClientScore, RunStatus, ScoringRun
from scoring.summary import rfm_summary_from_orders, summary_from_orders
from tests.factories import ClientFactory
from tests.scoring.test_clv import TRUE_BGNBD, TRUE_GAMMA_GAMMA, simulate_bgnbd

pytestmark = pytest.mark.django_db

SCORE_FIELDS = [
    "client_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_sum",
    "rfm_code",
    "segment",
    "historical_clv",
    "p_alive",
    "expected_purchases_12m",
    "expected_order_value",
    "clv_12m",
    "clv_36m",
    "suggested_lifecycle",
]


@pytest.fixture(autouse=True)
def scoring_settings(settings):
    settings.SCORING_WINDOW_MONTHS = 0
    settings.SCORING_LIFESPAN_YEARS = 3
    settings.SCORING_GROSS_MARGIN = 0.3
    settings.SCORING_ANNUAL_DISCOUNT_RATE = 0.10
    settings.SCORING_TIME_UNIT_DAYS = 7
    settings.SCORING_P_ALIVE_THRESHOLD = 0.3
    settings.SCORING_REACTIVATE_AFTER_DAYS = 365
    settings.SCORING_FIT_MAX_CLIENTS = 100_000
    settings.SCORING_KEEP_RUNS = 12
    settings.SCORING_RUN_TIME_LIMIT = 3600
    return settings


def _today():
    return timezone.localdate()


def _noon(days_ago: int) -> datetime:
    return timezone.make_aware(datetime.combine(_today() - timedelta(days=days_ago), time(12)))


def _buy(client: Client, *days_ago: int, amount: str = "100.00") -> None:
    Purchase.objects.bulk_create(
        Purchase(client=client, purchased_on=_today() - timedelta(days=days), amount=Decimal(amount))
        for days in days_ago
    )


def _run(**kwargs) -> ScoringRun:
    run = services.scoring_run_create(**kwargs)
    return services.scoring_run_execute(run_id=run.pk)


def _scores(run: ScoringRun) -> dict[int, dict]:
    rows = ClientScore.objects.filter(run=run).values(*SCORE_FIELDS)
    return {row["client_id"]: row for row in rows}


@pytest.fixture
def portfolio(rep, other_rep):
    """Five buyers with distinct recency, orders and revenue (exact quintiles), two prospects and a lost client.

    Alice owns Ann, Bea and a prospect; Bob owns Cal and Dan; nobody owns Eve (her lifecycle was set by hand), the
    other prospect (created about ten weeks ago) and the lost client.
    """
    days = timedelta(days=1)
    people = {
        "ann": ClientFactory(owner=rep, lifecycle=Lifecycle.CLIENT, source=Source.REFERRAL, converted_at=_today() - 130 * days, last_interaction_at=_noon(5)),
        "bea": ClientFactory(owner=rep, lifecycle=Lifecycle.CLIENT, source=Source.REFERRAL, converted_at=_today() - 110 * days, last_interaction_at=_noon(15)),
        "cal": ClientFactory(owner=other_rep, lifecycle=Lifecycle.TO_REACTIVATE, source=Source.INBOUND, converted_at=_today() - 90 * days),
        "dan": ClientFactory(owner=other_rep, lifecycle=Lifecycle.CLIENT, source=Source.INBOUND, converted_at=_today() - 430 * days),
        "eve": ClientFactory(owner=None, lifecycle=Lifecycle.CLIENT, lifecycle_manual=True, source=Source.OTHER),
        "pia": ClientFactory(owner=rep, lifecycle=Lifecycle.PROSPECT, source=Source.REFERRAL),
        "pol": ClientFactory(owner=None, lifecycle=Lifecycle.PROSPECT, source=Source.WEBINAR, created_at=_noon(70)),
        "leo": ClientFactory(owner=None, lifecycle=Lifecycle.LOST, source=Source.OTHER),
    }  # fmt: skip
    _buy(people["ann"], 130, 100, 70, 40, 10)
    _buy(people["ann"], 10, amount="50.00")  # a second order the same day: one more order, not one more purchase day
    _buy(people["bea"], 110, 80, 50, 20)
    _buy(people["cal"], 90, 60, 30)
    _buy(people["dan"], 430, 400)
    _buy(people["eve"], 500)
    return people


def test_a_run_scores_a_small_portfolio_as_computed_by_hand(portfolio, rep, other_rep, settings):
    settings.SCORING_P_ALIVE_THRESHOLD = 0.0  # recency alone decides the lifecycle here: five clients fit no model
    run = _run()

    assert run.status == RunStatus.COMPLETED and run.progress == 100 and not run.error
    assert ScoringRun.objects.current() == run
    scores = _scores(run)
    ann, bea, cal, dan, eve = (portfolio[name].pk for name in ("ann", "bea", "cal", "dan", "eve"))
    assert set(scores) == {ann, bea, cal, dan, eve}
    expected = {
        ann: (10, 6, "550.00", "555", "champions", 550 / 6 * 6 * 3 * 0.3),  # younger than a year: 6 orders a year
        bea: (20, 4, "400.00", "444", "loyal", 100 * 4 * 3 * 0.3),
        cal: (30, 3, "300.00", "333", "need_attention", 100 * 3 * 3 * 0.3),
        dan: (400, 2, "200.00", "222", "hibernating", 100 * 2 / (430 / 365.25) * 3 * 0.3),
        eve: (500, 1, "100.00", "111", "hibernating", 100 * 1 / (500 / 365.25) * 3 * 0.3),
    }
    for client_id, (recency, orders, revenue, code, segment, historical) in expected.items():
        score = scores[client_id]
        assert (score["recency_days"], score["frequency"], score["monetary"]) == (recency, orders, Decimal(revenue))
        assert (score["rfm_code"], score["segment"]) == (code, segment)
        assert score["rfm_sum"] == sum(int(digit) for digit in code)
        assert score["historical_clv"] == Decimal(f"{historical:.2f}")

    # Lifecycle: Cal bought a month ago (back to client), Dan more than a year ago (to reactivate); Eve's lifecycle
    # was chosen by hand, so her card only gets the suggestion.
    lifecycles = dict(Client.objects.values_list("pk", "lifecycle"))
    assert lifecycles[cal] == Lifecycle.CLIENT and lifecycles[dan] == Lifecycle.TO_REACTIVATE
    assert lifecycles[eve] == Lifecycle.CLIENT and scores[eve]["suggested_lifecycle"] == Lifecycle.TO_REACTIVATE
    assert {score["suggested_lifecycle"] for client_id, score in scores.items() if client_id != eve} == {""}
    history = ClientChange.objects.filter(field="lifecycle").values_list("client_id", "user", "old_value", "new_value")
    assert sorted(history) == sorted([(cal, None, "to_reactivate", "client"), (dan, None, "client", "to_reactivate")])
    assert run.counts["lifecycle_changes"] == 2 and run.counts["lifecycle_suggestions"] == 1
    assert run.counts["clients_scored"] == 5
    assert run.counts["segments"] == {
        "champions": 1,
        "loyal": 1,
        "potential_loyalists": 0,
        "new_customers": 0,
        "promising": 0,
        "need_attention": 1,
        "about_to_sleep": 0,
        "at_risk": 0,
        "cant_lose_them": 0,
        "hibernating": 2,
    }

    dashboard = run.dashboard
    cells = {(cell["r"], cell["f"]): (cell["clients"], cell["revenue"]) for cell in dashboard["grid"]}
    assert len(cells) == 25
    assert {cell: value for cell, value in cells.items() if value != (0, 0.0)} == {
        (5, 5): (1, 550.0),
        (4, 4): (1, 400.0),
        (3, 3): (1, 300.0),
        (2, 2): (1, 200.0),
        (1, 1): (1, 100.0),
    }
    segments = {row["key"]: row for row in dashboard["segments"]}
    assert [row["key"] for row in dashboard["segments"]] == ["champions", "loyal", "need_attention", "hibernating"]
    hibernating = segments["hibernating"]
    assert (hibernating["clients"], hibernating["revenue"]) == (2, 300.0)
    assert hibernating["revenue_share"] == pytest.approx(300 / 1550)
    assert hibernating["avg_recency_days"] == 450.0
    assert hibernating["avg_historical_clv"] == pytest.approx((expected[dan][5] + expected[eve][5]) / 2)
    assert segments["champions"]["revenue_share"] == pytest.approx(550 / 1550)
    assert dashboard["movements"] == []
    assert dashboard["composition"] == {"prospect": 2, "client": 4, "to_reactivate": 1, "lost": 1}

    kpis = dashboard["kpis"]
    # In the pipeline: the two prospects and the four clients with a conversion date; four converted.
    assert kpis["conversion_rate"] == pytest.approx(4 / 6)
    by_source = {row["source"]: (row["people"], row["converted"], row["rate"]) for row in kpis["conversion_by_source"]}
    assert by_source["referral"] == (3, 2, pytest.approx(2 / 3))
    assert by_source["inbound"] == (2, 2, 1.0)
    assert by_source["webinar"] == (1, 0, 0.0)
    assert by_source["networking"] == (0, 0, None)
    months = {row["month"]: (row["people"], row["converted"]) for row in kpis["conversion_by_month"]}
    assert len(months) == 12 and list(months)[-1] == _today().strftime("%Y-%m")
    assert months[_today().strftime("%Y-%m")] == (5, 4)
    assert months[(_today() - timedelta(days=70)).strftime("%Y-%m")] == (1, 0)
    assert sum(people for people, _converted in months.values()) == 6
    assert kpis["average_value_per_client"] == 310.0
    assert kpis["average_days_since_last_interaction"] == 10.0
    assert kpis["clients_scored"] == 5

    alice, bob, nobody = dashboard["per_rep"]
    assert alice == {
        "owner_id": rep.pk,
        "owner": "alice",
        "clients": 2,
        "revenue": 950.0,
        "avg_clv_12m": alice["avg_clv_12m"],
        "composition": {"prospect": 1, "client": 2, "to_reactivate": 0, "lost": 0},
        "segments": {"champions": 1, "loyal": 1},
        "average_days_since_last_interaction": 10.0,
        "conversion_rate": pytest.approx(2 / 3),
    }
    assert (bob["owner_id"], bob["clients"], bob["revenue"]) == (other_rep.pk, 2, 500.0)
    assert bob["composition"] == {"prospect": 0, "client": 1, "to_reactivate": 1, "lost": 0}
    assert bob["segments"] == {"need_attention": 1, "hibernating": 1}
    assert (bob["average_days_since_last_interaction"], bob["conversion_rate"]) == (None, 1.0)
    assert (nobody["owner_id"], nobody["owner"], nobody["clients"], nobody["revenue"]) == (None, "", 1, 100.0)
    assert nobody["composition"] == {"prospect": 1, "client": 1, "to_reactivate": 0, "lost": 1}
    assert nobody["conversion_rate"] == 0.0

    assert set(run.timings) == {*services.PHASES, "prune", "total"}
    assert run.parameters["lifespan_years"] == 3 and run.parameters["window_start"] is None


def _simulated_portfolio(clients: int = 1500, seed: int = 7) -> None:
    """Clients whose purchases follow BG/NBD and Gamma-Gamma (weeks), as orders dated by day up to today."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(26, 78, clients)
    x, t_x, _holdout = simulate_bgnbd(rng, T, **TRUE_BGNBD)
    nu = rng.gamma(TRUE_GAMMA_GAMMA["q"], 1 / TRUE_GAMMA_GAMMA["gamma"], clients)
    people = Client.objects.bulk_create(ClientFactory.build(lifecycle=Lifecycle.CLIENT) for _ in range(clients))
    orders = []
    for client, weeks, repeats, last, rate in zip(people, T, x, t_x, nu, strict=True):
        times = np.concatenate([[0.0], np.sort(rng.uniform(0, last, max(repeats - 1, 0))), [last] if repeats else []])
        first_day = _today() - timedelta(days=int(weeks * 7))
        for when in times:
            amount = Decimal(f"{rng.gamma(TRUE_GAMMA_GAMMA['p'], 1 / rate):.2f}")
            orders.append(
                Purchase(client=client, purchased_on=first_day + timedelta(days=int(when * 7)), amount=amount)
            )
    Purchase.objects.bulk_create(orders)


def test_a_run_on_a_simulated_portfolio_fits_both_models_and_fills_every_score():
    _simulated_portfolio()

    run = _run()

    assert run.status == RunStatus.COMPLETED, run.error
    assert run.bgnbd["converged"] and run.gamma_gamma["converged"], (run.bgnbd, run.gamma_gamma)
    assert run.bgnbd["time_unit"] == "weeks" and run.bgnbd["reused_from_run"] is None
    assert run.warnings == []
    scores = pd.DataFrame.from_records(list(_scores(run).values())).sort_values("client_id", ignore_index=True)
    assert len(scores) == Client.objects.count()
    assert not scores.isna().any().any()

    # The stored predictions are those of the pure functions on the raw orders, with the stored parameters.
    orders = pd.DataFrame.from_records(
        list(Purchase.objects.values_list("client_id", "purchased_on", "amount")),
        columns=["client_id", "date", "amount"],
    )
    model_summary = summary_from_orders(orders, cutoff=_today(), unit_days=7)
    bgnbd = BgNbdParams(**{key: run.bgnbd[key] for key in ("r", "alpha", "a", "b", "loglik")}, converged=True)
    gamma_gamma = GammaGammaParams(
        **{key: run.gamma_gamma[key] for key in ("p", "q", "gamma", "loglik")}, converged=True
    )
    expected = predictive_clv(
        model_summary, bgnbd=bgnbd, gamma_gamma=gamma_gamma, unit_days=7, annual_discount_rate=0.10, gross_margin=0.3
    )
    np.testing.assert_allclose(scores["p_alive"], expected["probability_alive"], rtol=1e-9)
    np.testing.assert_allclose(scores["expected_purchases_12m"], expected["expected_purchases_12m"], rtol=1e-9)
    np.testing.assert_allclose(scores["clv_12m"].astype(float), expected["clv_12m"], atol=0.005)
    np.testing.assert_allclose(scores["clv_36m"].astype(float), expected["clv_36m"], atol=0.005)
    np.testing.assert_allclose(
        scores["expected_order_value"].astype(float), expected["expected_order_value"], atol=0.005
    )
    # And the fit is the one of the pure function on that summary.
    fitted = fit_bgnbd(model_summary["frequency"], model_summary["recency"], model_summary["T"])
    assert run.bgnbd["r"] == pytest.approx(fitted.r, rel=1e-9) and run.bgnbd["b"] == pytest.approx(fitted.b, rel=1e-9)
    assert run.dashboard["kpis"]["total_clv_12m"] == pytest.approx(expected["clv_12m"].sum())


def test_the_same_as_of_date_twice_gives_identical_scores():
    _simulated_portfolio(clients=800, seed=3)

    first = _run()
    second = _run(as_of=first.as_of)

    assert second.status == RunStatus.COMPLETED
    assert _scores(first) == _scores(second)
    assert {key: first.bgnbd[key] for key in ["r", "alpha", "a", "b", "loglik"]} == {
        key: second.bgnbd[key] for key in ["r", "alpha", "a", "b", "loglik"]
    }
    assert first.dashboard["grid"] == second.dashboard["grid"]
    # Every client stays in his segment, so every movement is from a segment to itself.
    movements = second.dashboard["movements"]
    assert all(movement["from"] == movement["to"] for movement in movements)
    assert sum(movement["clients"] for movement in movements) == len(_scores(second))
    assert [m["clients"] for m in movements] == sorted((m["clients"] for m in movements), reverse=True)


def test_a_run_that_fails_halfway_leaves_the_previous_scores_visible(portfolio, monkeypatch):
    previous = _run()
    previous_scores = _scores(previous)
    bea = portfolio["bea"]
    Client.objects.filter(pk=bea.pk).update(lifecycle=Lifecycle.TO_REACTIVATE)  # the next run would undo this

    def broken_dashboard(**kwargs):
        raise RuntimeError("the dashboard could not be computed")

    monkeypatch.setattr(services, "dashboard_aggregates", broken_dashboard)
    failed = services.scoring_run_create()
    with pytest.raises(RuntimeError):
        services.scoring_run_execute(run_id=failed.pk)

    failed.refresh_from_db()
    assert failed.status == RunStatus.FAILED and failed.phase == "dashboard"
    assert "the dashboard could not be computed" in failed.error
    assert failed.finished_at is not None and "write" in failed.timings
    assert not ClientScore.objects.filter(run=failed).exists()  # its scores were written, then deleted
    assert ScoringRun.objects.current() == previous
    assert _scores(previous) == previous_scores
    assert Client.objects.get(pk=bea.pk).lifecycle == Lifecycle.TO_REACTIVATE


def _not_converged(*args, **kwargs) -> BgNbdParams:
    nan = float("nan")
    return BgNbdParams(nan, nan, nan, nan, nan, False, "the optimiser did not converge", 1500)


def test_a_failed_fit_reuses_the_previous_runs_parameters_with_a_warning(monkeypatch):
    _simulated_portfolio()
    first = _run()
    assert first.bgnbd["converged"]

    monkeypatch.setattr(services, "fit_bgnbd", _not_converged)
    second = _run()

    assert second.status == RunStatus.COMPLETED
    for key in ("r", "alpha", "a", "b"):
        assert second.bgnbd[key] == first.bgnbd[key]
    assert second.bgnbd["converged"] is False and second.bgnbd["reused_from_run"] == first.pk
    assert second.bgnbd["reason"] == "the optimiser did not converge"
    assert second.warnings == [
        f"The BG/NBD fit failed (the optimiser did not converge): the parameters of run {first.pk} are used."
    ]
    assert _scores(second) == _scores(first)  # same orders, same parameters

    # A third failure still points at the run whose fit produced the parameters.
    third = _run()
    assert third.bgnbd["reused_from_run"] == first.pk


def test_a_fixed_dropout_fit_is_used_for_predictions(monkeypatch):
    _simulated_portfolio(clients=300)
    note = "fixed dropout: a + b = 2.87e+07, every client drops out with the same probability p = 0.03247"

    def fixed_dropout(*args, **kwargs):
        return BgNbdParams(0.24, 0.8, 9.4e5, 2.8e7, -1000.0, True, "", 300, note)

    monkeypatch.setattr(services, "fit_bgnbd", fixed_dropout)
    run = _run()

    assert run.status == RunStatus.COMPLETED
    assert run.bgnbd["converged"] is True and run.bgnbd["note"] == note
    assert run.bgnbd["dropout_probability"] == pytest.approx(9.4e5 / (9.4e5 + 2.8e7))
    assert not any("BG/NBD" in warning for warning in run.warnings)
    scores = ClientScore.objects.filter(run=run)
    assert not scores.filter(p_alive__isnull=True).exists()
    assert scores.filter(expected_purchases_12m__gt=0).exists()


def test_without_any_usable_fit_the_run_completes_without_predictions(portfolio, monkeypatch):
    monkeypatch.setattr(services, "fit_bgnbd", _not_converged)
    monkeypatch.setattr(
        services, "fit_gamma_gamma", lambda *args: GammaGammaParams(1.0, 0.5, 1.0, -10.0, False, "q <= 1", 3)
    )

    run = _run()

    assert run.status == RunStatus.COMPLETED
    assert len(run.warnings) == 2 and all("no prediction" in warning for warning in run.warnings)
    assert run.bgnbd["r"] is None and run.gamma_gamma["mean_spend"] is None
    scores = ClientScore.objects.filter(run=run)
    assert scores.count() == 5
    assert not scores.filter(p_alive__isnull=False).exists() and not scores.filter(clv_12m__isnull=False).exists()
    assert run.dashboard["kpis"]["total_clv_12m"] is None  # no figure rather than a false zero
    assert all(row["avg_clv_12m"] is None for row in run.dashboard["segments"])


def test_the_chance_of_being_active_alone_can_make_a_client_to_reactivate(portfolio, settings, monkeypatch):
    monkeypatch.setattr(services, "fit_bgnbd", lambda *args: BgNbdParams(0.25, 4.0, 0.8, 2.5, -100.0, True, "", 5))
    settings.SCORING_P_ALIVE_THRESHOLD = 0.999
    run = _run()

    ann = ClientScore.objects.get(run=run, client=portfolio["ann"])
    assert ann.recency_days == 10 and ann.p_alive < 0.999
    assert Client.objects.get(pk=portfolio["ann"].pk).lifecycle == Lifecycle.TO_REACTIVATE


def test_a_run_as_of_a_past_date_changes_no_lifecycle(portfolio):
    run = _run(as_of=_today() - timedelta(days=1))

    assert run.status == RunStatus.COMPLETED and run.parameters["apply_lifecycle"] is False
    assert "no lifecycle was changed" in run.warnings[-1]
    assert Client.objects.get(pk=portfolio["dan"].pk).lifecycle == Lifecycle.CLIENT
    assert not ClientChange.objects.filter(field="lifecycle").exists()
    assert ClientScore.objects.get(run=run, client=portfolio["dan"]).recency_days == 399


def test_the_analysis_window_leaves_older_purchases_out(portfolio, settings):
    settings.SCORING_WINDOW_MONTHS = 12

    run = _run()

    # Dan's and Eve's purchases are all more than a year old.
    assert set(_scores(run)) == {portfolio[name].pk for name in ("ann", "bea", "cal")}
    start = pd.Timestamp(_today()) - pd.DateOffset(months=12) + pd.Timedelta(days=1)
    assert run.parameters["window_start"] == start.date().isoformat()


def test_a_run_on_a_portfolio_without_purchases_completes_with_empty_figures():
    ClientFactory(lifecycle=Lifecycle.PROSPECT)

    run = _run()

    assert run.status == RunStatus.COMPLETED, run.error
    assert run.counts["clients_scored"] == 0 and not ClientScore.objects.exists()
    assert run.dashboard["segments"] == [] and run.dashboard["composition"]["prospect"] == 1
    assert all(cell["clients"] == 0 for cell in run.dashboard["grid"])
    assert run.bgnbd["reason"] == "no customers"


def test_starting_a_run_refuses_while_another_is_under_way():
    running = ScoringRun.objects.create(as_of=_today(), status=RunStatus.RUNNING, started_at=timezone.now())

    with pytest.raises(services.ScoringRunInProgress, match="already under way"):
        services.scoring_run_start()

    assert ScoringRun.objects.count() == 1 and ScoringRun.objects.get().pk == running.pk


def test_a_stale_run_is_marked_failed_when_a_new_run_starts(settings, django_capture_on_commit_callbacks, monkeypatch):
    enqueued = []
    monkeypatch.setattr(tasks.score_portfolio_task, "apply_async", lambda args, **options: enqueued.extend(args))
    too_old = timezone.now() - timedelta(seconds=settings.SCORING_RUN_TIME_LIMIT + 60)
    killed = ScoringRun.objects.create(as_of=_today(), status=RunStatus.RUNNING, started_at=too_old)
    lost = ScoringRun.objects.create(as_of=_today(), status=RunStatus.PENDING, created_at=too_old)

    with django_capture_on_commit_callbacks(execute=True):
        run = services.scoring_run_start()

    killed.refresh_from_db()
    lost.refresh_from_db()
    assert killed.status == lost.status == RunStatus.FAILED
    assert "stopped without finishing" in killed.error
    assert run.status == RunStatus.PENDING and enqueued == [run.pk]


def test_executing_a_run_that_is_already_running_is_refused_until_it_is_stale(settings):
    running = ScoringRun.objects.create(as_of=_today(), status=RunStatus.RUNNING, started_at=timezone.now())

    with pytest.raises(services.ScoringRunBusy) as busy:
        services.scoring_run_execute(run_id=running.pk)
    assert settings.SCORING_RUN_TIME_LIMIT < busy.value.retry_in <= settings.SCORING_RUN_TIME_LIMIT + 30

    ScoringRun.objects.filter(pk=running.pk).update(started_at=timezone.now() - timedelta(hours=2))
    stale = services.scoring_run_execute(run_id=running.pk)
    assert stale.status == RunStatus.FAILED


def test_executing_a_finished_run_again_changes_nothing(portfolio):
    run = _run()
    scores = _scores(run)

    again = services.scoring_run_execute(run_id=run.pk)

    assert again.status == RunStatus.COMPLETED and again.finished_at == run.finished_at
    assert _scores(again) == scores


def test_the_task_executes_the_run_it_is_given(portfolio):
    run = services.scoring_run_create()

    tasks.score_portfolio_task.apply(args=[run.pk])

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and ClientScore.objects.filter(run=run).count() == 5


def test_the_nightly_task_starts_a_run_once_and_skips_while_one_is_under_way(monkeypatch):
    monkeypatch.setattr(tasks.score_portfolio_task, "apply_async", lambda *args, **options: None)

    run_id = tasks.start_nightly_scoring_task.apply().get()
    assert ScoringRun.objects.get(pk=run_id).as_of == _today()
    assert tasks.start_nightly_scoring_task.apply().get() is None
    assert ScoringRun.objects.count() == 1


def test_the_nightly_run_is_scheduled_at_two_in_the_morning():
    entry = BEAT_SCHEDULE["score-portfolio-nightly"]
    assert entry["task"] == tasks.start_nightly_scoring_task.name
    assert entry["schedule"].hour == {2} and entry["schedule"].minute == {0}
    assert settings.CELERY_TIMEZONE == settings.TIME_ZONE  # 02:00 local time


def test_scores_of_old_and_failed_runs_are_pruned(portfolio, settings):
    settings.SCORING_KEEP_RUNS = 2
    failed = ScoringRun.objects.create(as_of=_today(), status=RunStatus.FAILED)
    ClientScore.objects.create(
        run=failed, client=portfolio["ann"], recency_days=1, frequency=1, monetary=1, r_score=1, f_score=1, m_score=1,
        rfm_sum=3, rfm_code="111", segment="hibernating", historical_clv=1,
    )  # fmt: skip

    runs = [_run() for _ in range(3)]

    kept = set(ClientScore.objects.values_list("run_id", flat=True).distinct())
    assert kept == {runs[1].pk, runs[2].pk}
    assert ScoringRun.objects.count() == 4  # the runs themselves stay, with their figures


def test_the_lifecycle_service_never_overwrites_a_lifecycle_chosen_by_hand():
    automatic = ClientFactory(lifecycle=Lifecycle.CLIENT)
    by_hand = ClientFactory(lifecycle=Lifecycle.CLIENT, lifecycle_manual=True)
    already = ClientFactory(lifecycle=Lifecycle.TO_REACTIVATE)

    changed = client_lifecycle_apply(
        changes=dict.fromkeys((automatic.pk, by_hand.pk, already.pk), Lifecycle.TO_REACTIVATE), reason="test"
    )

    assert changed == 1
    assert dict(Client.objects.values_list("pk", "lifecycle")) == {
        automatic.pk: Lifecycle.TO_REACTIVATE,
        by_hand.pk: Lifecycle.CLIENT,
        already.pk: Lifecycle.TO_REACTIVATE,
    }
    change = ClientChange.objects.get()
    assert (change.client_id, change.user, change.field, change.old_value, change.new_value) == (
        automatic.pk,
        None,
        "lifecycle",
        "client",
        "to_reactivate",
    )
    with pytest.raises(ValueError):
        client_lifecycle_apply(changes={automatic.pk: "vip"}, reason="test")


# Pure parts of a run.


def _random_orders(seed: int = 5, clients: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = clients * 6
    return pd.DataFrame(
        {
            "client_id": rng.integers(1, clients + 1, n),
            "date": pd.Timestamp("2025-06-30") - pd.to_timedelta(rng.integers(0, 400, n) // 3 * 3, unit="D"),
            "amount": np.round(rng.gamma(2.0, 40.0, n), 2),
        }
    )


def test_the_per_client_purchase_summary_gives_the_model_and_rfm_summaries_of_the_raw_orders():
    orders = _random_orders()  # days in steps of three: many clients order twice the same day
    as_of = pd.Timestamp("2025-06-30").date()
    days = orders.groupby(["client_id", "date"]).agg(orders=("amount", "size"), total=("amount", "sum")).reset_index()

    summary = scoring_io.fold_purchase_days(days.rename(columns={"date": "purchased_on"}))

    expected_rfm = rfm_summary_from_orders(orders, end=as_of)
    pd.testing.assert_frame_equal(
        summary[["client_id", "first_purchase", "last_purchase", "orders"]],
        expected_rfm[["client_id", "first_purchase", "last_purchase", "orders"]],
        check_dtype=False,
    )
    np.testing.assert_allclose(summary["revenue"], expected_rfm["revenue"])
    model = services.model_summary_from_purchases(summary, as_of=as_of, unit_days=7)
    expected_model = summary_from_orders(orders, cutoff=as_of, unit_days=7)
    for column in ("client_id", "frequency", "recency", "T"):
        np.testing.assert_array_equal(model[column], expected_model[column])
    np.testing.assert_allclose(model["monetary"], expected_model["monetary"], rtol=1e-12)


def test_the_fit_sample_is_everyone_or_a_stable_subset_of_about_the_size_asked():
    ids = pd.Series(np.arange(1, 100_001))

    assert services.fit_sample(ids, max_clients=0).all()
    assert services.fit_sample(ids, max_clients=200_000).all()
    sample = services.fit_sample(ids, max_clients=20_000)
    assert sample.sum() == pytest.approx(20_000, rel=0.02)
    assert (services.fit_sample(ids[::2], max_clients=10_000) == sample[::2]).all()  # by id, not by position


def test_movements_count_clients_from_their_previous_segment_new_clients_from_none():
    scores = pd.DataFrame(
        {
            "client_id": [1, 2, 3, 4],
            "r_score": [5, 5, 1, 4],
            "f_score": [5, 4, 1, 1],
            "segment": ["champions", "champions", "hibernating", "promising"],
            "monetary": [10.0, 20.0, 30.0, 40.0],
            "recency_days": [1, 2, 300, 20],
            "historical_clv": [1.0, 2.0, 3.0, 4.0],
            "clv_12m": [np.nan] * 4,
            "clv_36m": [np.nan] * 4,
        }
    )
    clients = pd.DataFrame(
        {
            "client_id": [1, 2, 3, 4, 5],
            "owner_id": [np.nan] * 5,
            "lifecycle": ["client"] * 5,
            "source": ["other"] * 5,
            "created_on": pd.to_datetime(["2025-01-01"] * 5),
            "converted_at": pd.to_datetime([None] * 5),
            "last_interaction_on": pd.to_datetime([None] * 5),
        }
    )
    previous = pd.DataFrame({"client_id": [1, 2, 3, 5], "segment": ["loyal", "champions", "loyal", "at_risk"]})

    dashboard = dashboard_aggregates(
        scores=scores, clients=clients, previous=previous, owners={}, as_of=pd.Timestamp("2025-06-30").date()
    )

    assert dashboard["movements"] == [
        {"from": None, "to": "promising", "clients": 1},
        {"from": "champions", "to": "champions", "clients": 1},
        {"from": "loyal", "to": "champions", "clients": 1},
        {"from": "loyal", "to": "hibernating", "clients": 1},
    ]
    assert dashboard["kpis"]["conversion_rate"] is None and dashboard["kpis"]["total_clv_12m"] is None


# PostgreSQL's bulk paths give the same frames and rows as the portable ones.


@pytest.mark.postgresql
def test_postgresql_aggregates_purchases_as_the_orm_path_does(portfolio):
    _buy(portfolio["bea"], 20, amount="-30.00")  # a refund on a purchase day
    for start in (None, _today() - timedelta(days=100)):
        streamed = scoring_io.purchase_summary(start=start, end=_today())
        portable = scoring_io._purchase_summary_orm(start, _today())
        pd.testing.assert_frame_equal(streamed, portable[scoring_io.PURCHASE_SUMMARY_COLUMNS].astype(streamed.dtypes))


@pytest.mark.postgresql
def test_postgresql_reads_client_facts_as_the_orm_path_does(portfolio, monkeypatch):
    streamed = scoring_io.client_facts()
    monkeypatch.setattr(scoring_io, "is_postgresql", lambda: False)
    portable = scoring_io.client_facts()

    pd.testing.assert_frame_equal(streamed, portable, check_categorical=False)
    assert streamed["last_interaction_on"].notna().sum() == 2


@pytest.mark.postgresql
def test_binary_copy_writes_the_rows_bulk_create_writes(portfolio, monkeypatch):
    run = _run()
    expected = _scores(run)
    copied = ScoringRun.objects.create(as_of=_today(), status=RunStatus.FAILED)
    frame = pd.DataFrame.from_records(list(expected.values()))
    frame.loc[0, ["p_alive", "clv_12m"]] = np.nan  # NULLs in some rows only
    frame.loc[1, "monetary"] = -12.34
    frame.loc[2, "suggested_lifecycle"] = "client"

    scoring_io.scores_write(run_id=copied.pk, scores=frame)
    monkeypatch.setattr(scoring_io, "is_postgresql", lambda: False)
    created = ScoringRun.objects.create(as_of=_today(), status=RunStatus.FAILED)
    scoring_io.scores_write(run_id=created.pk, scores=frame)

    assert _scores(copied) == _scores(created)
    assert _scores(copied)[frame.loc[1, "client_id"]]["monetary"] == Decimal("-12.34")
    assert (
        scoring_io.run_segments(copied.pk)
        .sort_values("client_id", ignore_index=True)
        .equals(frame[["client_id", "segment"]].sort_values("client_id", ignore_index=True).astype({"segment": str}))
    )


@pytest.mark.postgresql
def test_postgresql_keeps_each_runs_scores_in_a_partition_that_pruning_drops(portfolio, settings):
    from django.db import connection

    def partitions() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
                "WHERE pg_inherits.inhparent = 'scoring_clientscore'::regclass"
            )
            return {name for (name,) in cursor.fetchall()}

    settings.SCORING_KEEP_RUNS = 1
    first = _run()
    assert f"scoring_clientscore_run_{first.pk}" in partitions()
    assert ClientScore.objects.filter(run=first).count() == 5
    second = _run()

    assert partitions() == {"scoring_clientscore_default", f"scoring_clientscore_run_{second.pk}"}
    assert set(ClientScore.objects.values_list("run_id", flat=True)) == {second.pk}
    # Rows written through the ORM land in the default partition, with ids from the same sequence.
    extra = ClientScore.objects.create(
        run=first, client=portfolio["ann"], recency_days=1, frequency=1, monetary=1, r_score=1, f_score=1,
        m_score=1, rfm_sum=3, rfm_code="111", segment="hibernating", historical_clv=1,
    )  # fmt: skip
    assert extra.pk > max(ClientScore.objects.filter(run=second).values_list("pk", flat=True))
