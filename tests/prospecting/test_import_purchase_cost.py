"""A purchase history may carry the cost of goods: guessed from its column name, read like an amount, stored."""

from decimal import Decimal

from crm.models import Purchase
from prospecting import imports
from prospecting.models import ImportStatus
from tests.factories import ClientFactory


def _job(data, user):
    job = imports.import_create(data=data, filename="orders.csv", kind="purchases", user=user)
    imports.import_preview(job=job)
    return job


def _apply(job):
    imports.import_queue(job=job)
    return imports.import_apply(job_id=job.pk)


def test_the_cost_of_goods_is_stored_on_the_purchase_summed_over_its_lines(admin_member):
    ClientFactory(email="ann@x.com")
    ClientFactory(email="bob@x.com")
    data = (
        "email;date;référence;montant;coût;produit\n"
        "ann@x.com;01/05/2024;A-1;100,00;40,50;Mug\n"
        "ann@x.com;01/05/2024;A-1;20,00;7,25;Spoon\n"
        "bob@x.com;02/05/2024;B-1;30;12;Lamp\n"
    ).encode()
    job = _job(data, admin_member)
    assert job.mapping["coût"] == "cost"
    assert (job.created_count, job.error_count) == (2, 0)
    assert _apply(job).status == ImportStatus.APPLIED
    costs = dict(Purchase.objects.values_list("reference", "cost"))
    assert costs == {"A-1": Decimal("47.75"), "B-1": Decimal("12.00")}
    assert Purchase.objects.get(reference="A-1").amount == Decimal("120.00")


def test_without_a_cost_column_the_cost_stays_unknown(admin_member):
    ClientFactory(email="ann@x.com")
    _apply(_job(b"email,order date,reference,amount\nann@x.com,2024-05-01,A-1,10\n", admin_member))
    assert Purchase.objects.get().cost is None


def test_an_unreadable_or_negative_cost_is_an_error_and_its_order_is_not_imported(admin_member):
    ClientFactory(email="ann@x.com")
    data = (
        b"email,order date,reference,amount,cost of goods\n"
        b"ann@x.com,2024-05-01,A-1,10,cheap\n"
        b"ann@x.com,2024-05-02,A-2,10,-3\n"
        b"ann@x.com,2024-05-03,A-3,10,4.5\n"
    )
    job = _apply(_job(data, admin_member))
    reasons = {error["line"]: (error["column"], error["reason"]) for error in job.errors}
    assert reasons == {
        2: ("cost of goods", "expected an amount such as 1 234,56 or 1234.56, got “cheap”"),
        3: ("cost of goods", "a negative amount is not allowed here, got “-3”"),
    }
    assert list(Purchase.objects.values_list("reference", "cost")) == [("A-3", Decimal("4.50"))]


def test_an_order_whose_lines_do_not_all_give_a_cost_is_reported(admin_member):
    ClientFactory(email="ann@x.com")
    data = (
        b"email,order date,reference,amount,cost\n"
        b"ann@x.com,2024-05-01,A-1,10,4\n"
        b"ann@x.com,2024-05-01,A-1,5,\n"
        b"ann@x.com,2024-05-02,A-2,10,\n"
        b"ann@x.com,2024-05-02,A-2,5,2\n"
    )
    job = _job(data, admin_member)
    reasons = {error["line"]: error["reason"] for error in job.errors}
    assert reasons == {
        3: "the cost of goods is missing, while line 2 of the same order has one",
        5: "line 4 of the same order has no cost of goods: give every line one, or none",
    }
