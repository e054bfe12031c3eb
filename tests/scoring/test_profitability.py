"""Profitability per RFM segment, saved segment and persona, the three-step analysis page, its CSV export, and the
persona page's channels panel: every figure checked against numbers computed by hand on a small portfolio.

The portfolio (purchases dated from today; "12m" is the default period, the last 12 months):

- Anna: champion (12-month CLV 500), persona Pia, referral, converted. Purchases: 100 (cost 60, with offer SPRING)
  30 days ago, 400 (cost unknown) 60 days ago, 1000 (cost 500) two years ago.
- Bruno: champion (CLV 300), persona Pia, webinar, converted. Purchase: 300 (cost 150) 10 days ago.
- Chloé: hibernating (no CLV), persona Paul, to reactivate. Purchase: 50 (cost 40) 200 days ago.
- Denis: prospect, not scored in the current run (an older run made him a champion: it must not count), no persona.
- Emma: prospect, persona Pia, referral, not converted, no purchase, not scored.

Campaigns: Xmas (cost 90, launched 20 days ago) sent to Anna, Bruno, Chloé and Denis (and failed for Emma);
Flash (no cost, launched 5 days ago) sent to Anna and Denis; Old (cost 100, launched three years ago) sent to Chloé.
"""

from datetime import timedelta
from decimal import Decimal

import pandas as pd
import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from crm.models import Lifecycle, Source
from prospecting.models import Campaign, CampaignSend, CampaignStep, DiscountKind, Offer, OfferRedemption, SendStatus
from prospecting.panels import persona_channels_panel
from scoring import profitability, tasks
from scoring.models import RunStatus, ScoringRun
from scoring.rfm import SEGMENTS
from tests.factories import ClientFactory, PersonaFactory, PurchaseFactory, SegmentFactory
from tests.scoring.factories import ClientScoreFactory, ScoringRunFactory

D = Decimal
ANALYSIS = reverse("scoring:analysis")
EXPORT = reverse("scoring:analysis-export")


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def days_ago(days: int):
    return timezone.localdate() - timedelta(days=days)


def campaign(name: str, *, cost, launched_days_ago: int, sends: dict) -> Campaign:
    record = Campaign.objects.create(
        name=name, cost=cost, status="finished", launched_at=timezone.now() - timedelta(days=launched_days_ago)
    )
    step = CampaignStep.objects.create(campaign=record, position=1, subject="Hello", body="Hi")
    for client, outcome in sends.items():
        CampaignSend.objects.create(
            campaign=record,
            step=step,
            client=client,
            status=outcome.get("status", SendStatus.SENT),
            replied_at=timezone.now() if outcome.get("replied") else None,
            converted_on=timezone.localdate() if outcome.get("converted") else None,
        )
    return record


@pytest.fixture
def portfolio(db, manager):
    older = ScoringRunFactory(as_of="2026-01-01")
    run = ScoringRunFactory(as_of="2026-02-01")
    ScoringRunFactory(as_of="2026-02-02", status=RunStatus.FAILED)
    pia, paul = PersonaFactory(name="Pia"), PersonaFactory(name="Paul")
    converted = days_ago(400)
    anna = ClientFactory(first_name="Anna", persona=pia, source=Source.REFERRAL, lifecycle=Lifecycle.CLIENT)
    anna.converted_at = converted
    anna.save()
    bruno = ClientFactory(
        first_name="Bruno", persona=pia, source=Source.WEBINAR, lifecycle=Lifecycle.CLIENT, converted_at=converted
    )
    chloe = ClientFactory(first_name="Chloé", persona=paul, lifecycle=Lifecycle.TO_REACTIVATE)
    denis = ClientFactory(first_name="Denis", lifecycle=Lifecycle.PROSPECT)
    emma = ClientFactory(first_name="Emma", persona=pia, source=Source.REFERRAL, lifecycle=Lifecycle.PROSPECT)

    ClientScoreFactory(run=run, client=anna, r_score=5, f_score=5, clv_12m=D("500.00"))
    ClientScoreFactory(run=run, client=bruno, r_score=5, f_score=4, clv_12m=D("300.00"))
    ClientScoreFactory(run=run, client=chloe, r_score=1, f_score=1, clv_12m=None)
    ClientScoreFactory(run=older, client=denis, r_score=5, f_score=5, clv_12m=D("9999.00"))

    spring_purchase = PurchaseFactory(client=anna, amount=D("100.00"), cost=D("60.00"), purchased_on=days_ago(30))
    PurchaseFactory(client=anna, amount=D("400.00"), cost=None, purchased_on=days_ago(60))
    PurchaseFactory(client=anna, amount=D("1000.00"), cost=D("500.00"), purchased_on=days_ago(730))
    PurchaseFactory(client=bruno, amount=D("300.00"), cost=D("150.00"), purchased_on=days_ago(10))
    PurchaseFactory(client=chloe, amount=D("50.00"), cost=D("40.00"), purchased_on=days_ago(200))

    spring = Offer.objects.create(
        code="SPRING",
        name="Spring",
        discount_kind=DiscountKind.PERCENT,
        discount_value=D("10"),
        valid_from=days_ago(90),
        valid_until=days_ago(-30),
    )
    OfferRedemption.objects.create(offer=spring, purchase=spring_purchase)

    campaign(
        "Xmas",
        cost=D("90.00"),
        launched_days_ago=20,
        sends={
            anna: {"replied": True, "converted": True},
            bruno: {},
            chloe: {},
            denis: {},
            emma: {"status": SendStatus.FAILED},
        },
    )
    campaign("Flash", cost=None, launched_days_ago=5, sends={anna: {}, denis: {}})
    campaign("Old", cost=D("100.00"), launched_days_ago=3 * 365, sends={chloe: {}})

    segments = {
        "pia": SegmentFactory(name="Pia's people", filters={"persona": str(pia.pk)}, created_by=manager),
        "lyon": SegmentFactory(name="=Lyon", filters={"city": "Lyon"}, created_by=manager),
        "nobody": SegmentFactory(name="Nobody", filters={"city": "Nowhere"}, created_by=manager),
    }
    return {"run": run, "pia": pia, "paul": paul, "anna": anna, "segments": segments}


def rows_by_label(report) -> dict[str, dict]:
    return {row["label"]: row for row in report.rows}


def test_rfm_segments_over_the_last_12_months(portfolio):
    report = profitability.profitability_report("rfm", run_id=portfolio["run"].pk)
    rows = rows_by_label(report)
    assert [row["label"] for row in report.rows] == ["Champions", "Hibernating", "Not scored"]

    champions = rows["Champions"]
    assert champions["clients"] == 2
    assert champions["revenue"] == D("800.00")
    assert champions["covered_revenue"] == D("400.00")
    assert champions["gross_margin"] == D("190.00")
    assert champions["margin_coverage"] == D("0.5")
    assert champions["margin_rate"] == D("0.475")
    assert champions["clv_12m_sum"] == D("800.00")
    assert champions["clv_12m_mean"] == D("400.00")
    # Xmas: 90 x 2 of its 4 emails; Flash has no cost.
    assert champions["campaign_cost"] == D("45.00")
    assert (champions["campaigns"], champions["campaigns_cost_unknown"]) == (2, 1)
    # 800 x 190 / 400 - 45: the margin rate of the known costs applied to all the revenue.
    assert champions["contribution"] == D("335.00")
    assert (champions["contribution_basis"], champions["contribution_estimated"]) == ("margin", True)
    assert champions["revenue_per_client"] == D("400.00")
    assert champions["clients_share"] == D("0.4")
    assert champions["revenue_share"] == D("800") / D("850")

    hibernating = rows["Hibernating"]
    assert (hibernating["clients"], hibernating["revenue"], hibernating["gross_margin"]) == (1, D("50.00"), D("10.00"))
    assert (hibernating["margin_coverage"], hibernating["margin_rate"]) == (D("1"), D("0.2"))
    assert (hibernating["clv_12m_sum"], hibernating["clv_12m_mean"]) == (None, None)
    assert hibernating["campaign_cost"] == D("22.50")
    assert hibernating["contribution"] == D("-12.50")
    assert (hibernating["contribution_basis"], hibernating["contribution_estimated"]) == ("margin", False)

    not_scored = rows["Not scored"]
    assert (not_scored["clients"], not_scored["revenue"], not_scored["gross_margin"]) == (2, D("0"), None)
    assert not_scored["campaign_cost"] == D("22.50")
    assert not_scored["contribution"] == D("-22.50")
    assert not_scored["contribution_basis"] == "revenue"
    assert not_scored["revenue_per_client"] == D("0.00")
    assert report.campaigns_cost_unknown == ["Flash"]


def test_rfm_segments_over_all_time(portfolio):
    rows = rows_by_label(profitability.profitability_report("rfm", period="all", run_id=portfolio["run"].pk))
    champions = rows["Champions"]
    assert (champions["revenue"], champions["covered_revenue"]) == (D("1800.00"), D("1400.00"))
    assert champions["gross_margin"] == D("690.00")
    # 1800 x 690 / 1400 = 887.142857..., minus 45.
    assert champions["contribution"] == D("842.14")
    # The old campaign is counted too: all of its 100 goes to Chloé's segment.
    assert rows["Hibernating"]["campaign_cost"] == D("122.50")
    assert rows["Hibernating"]["contribution"] == D("-112.50")


def test_saved_segments(portfolio):
    rows = rows_by_label(profitability.profitability_report("segments", run_id=portfolio["run"].pk))
    lyon = rows["=Lyon"]  # every client
    assert (lyon["clients"], lyon["revenue"], lyon["covered_revenue"]) == (5, D("850.00"), D("450.00"))
    assert lyon["gross_margin"] == D("200.00")
    assert lyon["clv_12m_sum"] == D("800.00")
    assert lyon["clv_12m_mean"] == D("400.00")
    assert lyon["campaign_cost"] == D("90.00")
    assert (lyon["campaigns"], lyon["campaigns_cost_unknown"]) == (2, 1)
    # 850 x 200 / 450 = 377.777..., minus 90.
    assert lyon["contribution"] == D("287.78")

    pia = rows["Pia's people"]  # Anna, Bruno, Emma (whose email failed)
    assert (pia["clients"], pia["revenue"], pia["gross_margin"]) == (3, D("800.00"), D("190.00"))
    assert pia["campaign_cost"] == D("45.00")
    assert pia["contribution"] == D("335.00")
    assert pia["revenue_per_client"] == D("266.67")

    nobody = rows["Nobody"]
    assert (nobody["clients"], nobody["revenue"], nobody["campaign_cost"], nobody["contribution"]) == (
        0,
        D("0"),
        D("0"),
        D("0.00"),
    )
    assert nobody["revenue_per_client"] is None


def test_personas(portfolio):
    rows = rows_by_label(profitability.profitability_report("personas", run_id=portfolio["run"].pk))
    assert set(rows) == {"Pia", "Paul", "No persona"}
    assert (rows["Pia"]["clients"], rows["Pia"]["contribution"], rows["Pia"]["clv_12m_sum"]) == (
        3,
        D("335.00"),
        D("800.00"),
    )
    assert (rows["Paul"]["revenue"], rows["Paul"]["campaign_cost"], rows["Paul"]["contribution"]) == (
        D("50.00"),
        D("22.50"),
        D("-12.50"),
    )
    no_persona = rows["No persona"]
    assert (no_persona["clients"], no_persona["revenue"], no_persona["campaign_cost"]) == (1, D("0"), D("22.50"))
    assert (no_persona["clv_12m_sum"], no_persona["campaigns_cost_unknown"]) == (None, 1)


def test_clients_to_reactivate(portfolio):
    report = profitability.profitability_report("lifecycle", run_id=portfolio["run"].pk)
    [row] = report.rows
    assert (row["label"], row["clients"], row["revenue"], row["campaign_cost"]) == (
        "To reactivate",
        1,
        D("50.00"),
        D("22.50"),
    )


def test_without_a_campaign_reader_no_campaign_cost_is_counted(portfolio, settings):
    settings.SCORING_CAMPAIGN_COSTS = ""
    report = profitability.profitability_report("rfm", run_id=portfolio["run"].pk)
    champions = rows_by_label(report)["Champions"]
    assert (champions["campaign_cost"], champions["campaigns"], champions["contribution"]) == (
        D("0.00"),
        0,
        D("380.00"),
    )
    assert report.campaigns_cost_unknown == []


def test_the_figures_are_cached_for_the_run_and_period(portfolio, django_assert_num_queries):
    profitability.profitability_report("rfm", run_id=portfolio["run"].pk)
    # Cached: the saved segments' list only (the cache key), and nothing to label for RFM segments.
    with django_assert_num_queries(1):
        again = profitability.profitability_report("rfm", run_id=portfolio["run"].pk)
    assert rows_by_label(again)["Champions"]["contribution"] == D("335.00")


def test_the_figures_stored_after_a_run_are_read_instead_of_computed(portfolio, django_assert_num_queries):
    run = portfolio["run"]
    tasks.profitability_snapshot_task(run.pk)
    assert set(ScoringRun.objects.get(pk=run.pk).dashboard["profitability"]["periods"]["12m"]["kinds"]) == {
        "rfm",
        "lifecycle",
        "personas",
        "segments",
    }
    cache.clear()
    # Bought after the figures were stored: the stored figures do not know it, a live computation does.
    PurchaseFactory(client=portfolio["anna"], amount=D("1000.00"), cost=None, purchased_on=days_ago(1))

    with django_assert_num_queries(2):  # the saved segments (cache key) and the run's stored figures
        stored = profitability.profitability_report("rfm", run_id=run.pk)
    assert rows_by_label(stored)["Champions"]["revenue"] == D("800.00")
    assert rows_by_label(stored)["Champions"]["contribution"] == D("335.00")
    assert rows_by_label(stored)["Champions"]["clv_12m_mean"] == D("400.00")
    assert stored.campaigns_cost_unknown == ["Flash"]
    all_time = profitability.profitability_report("rfm", period="all", run_id=run.pk)
    assert rows_by_label(all_time)["Champions"]["revenue"] == D("1800.00")
    # Tomorrow the stored 12 months no longer are the last 12 months: computed again.
    live = profitability.profitability_report("rfm", run_id=run.pk, today=days_ago(-1))
    assert rows_by_label(live)["Champions"]["revenue"] == D("1800.00")

    assert rows_by_label(profitability.profitability_report("segments", run_id=run.pk))["=Lyon"]["revenue"] == D(
        "850.00"
    )
    SegmentFactory(name="New", filters={"city": "Lyon"})  # the stored saved segments are no longer the saved ones
    assert rows_by_label(profitability.profitability_report("segments", run_id=run.pk))["New"]["revenue"] == D(
        "1850.00"
    )


def test_an_empty_portfolio_has_empty_tables(db):
    run = ScoringRunFactory()
    tasks.profitability_snapshot_task(run.pk)
    for kind in ("rfm", "segments", "personas"):
        assert profitability.profitability_report(kind, period="all", run_id=run.pk).rows == []
    [to_reactivate] = profitability.profitability_report("lifecycle", run_id=run.pk).rows
    assert (to_reactivate["clients"], to_reactivate["revenue"]) == (0, D("0.00"))


def test_allocation_shares_each_campaign_pro_rata_of_its_emails():
    sends = pd.DataFrame(
        {"group": ["a", "b", "a", "b"], "campaign_id": [1, 1, 2, 2], "sends": [1, 2, 3, 1]},
    )
    campaigns = pd.DataFrame({"campaign_id": [1, 2], "cost": [D("30"), None], "sends": [4, 4]})
    table = profitability.allocate_campaign_costs(sends, campaigns).set_index("group")
    # Campaign 1 also sent one email outside these groups: 30 x 1/4 and 30 x 2/4.
    assert table.loc["a", "campaign_cost"] == D("7.50")
    assert table.loc["b", "campaign_cost"] == D("15.00")
    assert table.loc["a", "campaigns_cost_unknown"] == 1


def test_a_group_without_any_known_cost_contributes_its_revenue():
    members = pd.DataFrame({"group": ["x"], "clients": [2], "clv_12m_sum": [None], "clv_12m_known": [0]})
    purchases = pd.DataFrame(
        {"group": ["x"], "revenue": [D("120.00")], "covered_revenue": [None], "cost_of_goods": [None]}
    )
    allocated = pd.DataFrame(
        {"group": ["x"], "campaign_cost": [D("20.00")], "campaigns": [1], "campaigns_cost_unknown": [0]}
    )
    [row] = profitability.profitability_table(members, purchases, allocated).to_dict("records")
    assert (row["gross_margin"], row["margin_coverage"], row["margin_rate"]) == (None, D("0"), None)
    assert (row["contribution"], row["contribution_basis"]) == (D("100.00"), "revenue")
    assert row["revenue_per_client"] == D("60.00")


# The analysis page and its export ------------------------------------------------------------------------------


def test_the_analysis_page_shows_the_three_steps(client_as, manager, portfolio):
    response = client_as(manager).get(ANALYSIS)
    assert response.status_code == 200
    composition = {row["group"]: row for row in response.context["composition"]}
    assert list(composition) == ["champions", "hibernating", ""]
    assert (composition["champions"]["clients"], composition["champions"]["clients_percent"]) == (2, 40.0)
    table = response.context["rows"]
    assert [row["label"] for row in table] == ["Champions", "Hibernating", "Not scored"]
    assert [row["group"] for row in response.context["retain"]] == ["champions"]
    assert [row["label"] for row in response.context["reactivate"]] == ["Hibernating", "To reactivate"]
    content = response.content.decode()
    assert 'id="step-1"' in content and 'id="step-2"' in content and 'id="step-3"' in content
    assert "?segment=champions" in content
    assert reverse("crm:follow-up-bulk") + "?filters=segment%3Dchampions" in content
    assert reverse("prospecting:campaign-create") + "?rfm_segment=champions" in content
    assert str(SEGMENTS["champions"].action) in content
    assert "Flash" in content  # the campaign counted without a cost


def test_the_analysis_page_is_for_managers_and_admins(client_as, rep, admin_member, portfolio):
    assert client_as(rep).get(ANALYSIS).status_code == 403
    assert client_as(rep).get(EXPORT).status_code == 403
    assert client_as(admin_member).get(ANALYSIS).status_code == 200


def test_a_tab_swaps_the_table_alone_for_htmx(client_as, manager, portfolio):
    response = client_as(manager).get(
        ANALYSIS, {"by": "personas"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="profitability"
    )
    content = response.content.decode()
    assert 'id="profitability-table"' in content
    assert 'id="step-1"' not in content
    assert [row["label"] for row in response.context["rows"]] == ["Pia", "Paul", "No persona"]


def test_the_saved_segments_tab_escapes_their_names(client_as, manager, portfolio):
    portfolio["segments"]["nobody"].name = "<script>alert(1)</script>"
    portfolio["segments"]["nobody"].save()
    content = client_as(manager).get(ANALYSIS, {"by": "segments"}).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert "<script>alert(1)</script>" not in content


def test_an_unknown_period_says_so_and_shows_the_default(client_as, manager, portfolio):
    response = client_as(manager).get(ANALYSIS, {"period": "forever", "by": "nothing"})
    assert response.status_code == 200
    assert 'id="analysis-errors"' in response.content.decode()
    assert (response.context["period"], response.context["kind"]) == ("12m", "rfm")


def test_the_export_is_the_table_as_csv_with_formulas_neutralised(client_as, manager, portfolio):
    response = client_as(manager).get(EXPORT, {"by": "segments", "period": "12m"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Group,Clients,Revenue,Gross margin (known costs)")
    assert "'=Lyon,5,850.00,200.00,52.9,44.4,800.00,400.00,90.00,1,287.78,margin,170.00" in lines
    assert "Nobody,0,0.00,,,,,,0.00,0,0.00,revenue," in lines


def test_the_rfm_export_over_all_time(client_as, manager, portfolio):
    response = client_as(manager).get(EXPORT, {"period": "all"})
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[1] == "Champions,2,1800.00,690.00,77.8,49.3,800.00,400.00,45.00,1,842.14,margin,900.00"


# The persona page's channels panel ------------------------------------------------------------------------------


def panel_for(user, persona, rf):
    request = rf.get("/")
    request.user = user
    return persona_channels_panel(request, persona)


def test_persona_channels_panel_figures(manager, portfolio, rf):
    panel = panel_for(manager, portfolio["pia"], rf)
    assert panel["template"] == "prospecting/_persona_channels_panel.html"
    context = panel["context"]
    assert [(row["source"], row["clients"], row["converted"], row["rate"]) for row in context["sources"]] == [
        ("referral", 2, 1, 0.5),
        ("webinar", 1, 1, 1.0),
    ]
    assert [
        (
            row["campaign__name"],
            row["sent"],
            row["replied"],
            row["converted"],
            row["reply_rate"],
            row["conversion_rate"],
        )
        for row in context["campaigns"]
    ] == [("Xmas", 2, 1, 1, 0.5, 0.5), ("Flash", 1, 0, 0, 0.0, 0.0)]
    assert [(row["offer__code"], row["redemptions"], row["clients"], row["revenue"]) for row in context["offers"]] == [
        ("SPRING", 1, 1, D("100.00"))
    ]


def test_persona_channels_panel_is_left_out_without_members(manager, db, rf):
    assert panel_for(manager, PersonaFactory(), rf) is None


def test_the_persona_page_shows_the_channels_panel(client_as, manager, portfolio):
    content = client_as(manager).get(portfolio["paul"].get_absolute_url()).content.decode()
    assert 'id="persona-channels"' in content
    assert "Xmas" in content and "Old" in content


# Campaign cost --------------------------------------------------------------------------------------------------


def test_a_manager_enters_the_campaign_cost_and_sees_it_on_its_page(client_as, manager, db):
    segment = SegmentFactory()
    response = client_as(manager).post(
        reverse("prospecting:campaign-create"),
        {"name": "Autumn", "segment": segment.pk, "rfm_segment": "", "offer": "", "cost": "1250.50"},
    )
    created = Campaign.objects.get(name="Autumn")
    assert response.status_code == 302
    assert created.cost == D("1250.50")
    assert 'id="campaign-cost"' in client_as(manager).get(created.get_absolute_url()).content.decode()


def test_a_negative_campaign_cost_is_refused(client_as, manager, db):
    response = client_as(manager).post(
        reverse("prospecting:campaign-create"),
        {"name": "Autumn", "segment": SegmentFactory().pk, "rfm_segment": "", "offer": "", "cost": "-5"},
    )
    assert response.status_code == 200
    assert not Campaign.objects.filter(name="Autumn").exists()
    assert response.context["form"].errors["cost"]


def test_a_manager_records_the_cost_of_a_launched_campaign(client_as, manager, rep, portfolio):
    flash = Campaign.objects.get(name="Flash")
    url = reverse("prospecting:campaign-cost", args=[flash.pk])
    assert 'id="campaign-cost-form"' in client_as(manager).get(flash.get_absolute_url()).content.decode()

    assert client_as(rep).post(url, {"cost": "10"}).status_code == 403
    response = client_as(manager).post(url, {"cost": "-1"}, follow=True)
    assert "The cost was not saved" in response.content.decode()
    flash.refresh_from_db()
    assert flash.cost is None

    assert client_as(manager).post(url, {"cost": "30.00"}).status_code == 302
    flash.refresh_from_db()
    assert flash.cost == D("30.00")
    # Flash sent one email to Anna (a champion) and one to Denis (not scored): 15 each on top of Xmas's share.
    champions = rows_by_label(profitability.profitability_report("rfm", run_id=portfolio["run"].pk))["Champions"]
    assert (champions["campaign_cost"], champions["campaigns_cost_unknown"]) == (D("60.00"), 0)


def test_the_campaign_form_opened_from_the_analysis_targets_the_segment(client_as, manager, db):
    response = client_as(manager).get(reverse("prospecting:campaign-create"), {"rfm_segment": "at_risk"})
    assert response.context["form"]["rfm_segment"].value() == "at_risk"


def test_persona_channels_panel_counts_only_the_members_a_rep_may_see(rep, portfolio, rf, settings):
    settings.CRM_REPS_SEE_ONLY_OWN_CLIENTS = True
    assert panel_for(rep, portfolio["pia"], rf) is None
    anna = portfolio["anna"]
    anna.owner = rep
    anna.save()
    context = panel_for(rep, portfolio["pia"], rf)["context"]
    assert [(row["source"], row["clients"]) for row in context["sources"]] == [("referral", 1)]
    assert [(row["campaign__name"], row["sent"]) for row in context["campaigns"]] == [("Xmas", 1), ("Flash", 1)]
