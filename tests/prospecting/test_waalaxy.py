"""Waalaxy exports: recognition, client fields, the derived stage and the interactions with their stable keys."""

import csv
import io
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from crm.models import Direction, InteractionKind, Source, Stage
from prospecting.readers import read_table
from prospecting.waalaxy import (
    WAALAXY_COLUMNS,
    canonical_header,
    is_waalaxy_export,
    map_waalaxy_record,
    waalaxy_stage,
)

PARIS = ZoneInfo("Europe/Paris")


def prospect(**cells):
    record = dict.fromkeys(WAALAXY_COLUMNS, "")
    record.update(firstName="Jean", lastName="Dupont", linkedinUrl="https://www.linkedin.com/in/jean-dupont/")
    record.update(cells)
    return map_waalaxy_record(record, tz=PARIS)


def errors(result):
    return [(error.column, error.message) for error in result.errors]


# Recognition


def test_a_full_export_is_recognised():
    assert is_waalaxy_export(list(WAALAXY_COLUMNS))


def test_an_older_export_without_state_and_a_partial_one_are_recognised():
    assert is_waalaxy_export([column for column in WAALAXY_COLUMNS if column != "state"])
    assert is_waalaxy_export(["firstName", "lastName", "linkedinUrl"])
    assert is_waalaxy_export(["salesNavigatorId", "company_name", "prospectList"])


def test_column_names_are_matched_ignoring_case_and_spaces():
    assert is_waalaxy_export([" FirstName", "LASTNAME ", "linkedinurl"])
    assert canonical_header([" FirstName", "linkedinurl", "Notes"]) == ["firstName", "linkedinUrl", "Notes"]


@pytest.mark.parametrize(
    "header",
    [
        ["first_name", "last_name", "linkedin_url"],
        ["Prénom", "Nom", "LinkedIn"],
        ["firstName", "lastName", "email"],
        ["salesNavigatorId", "email"],
    ],
)
def test_other_lists_are_not_taken_for_a_waalaxy_export(header):
    assert not is_waalaxy_export(header)


# Client fields


def test_client_fields_are_mapped():
    result = prospect(
        job_title="Directrice commerciale",
        occupation="Je vends des choses | Growth",
        company_name="Acme SAS",
        location="Paris, Île-de-France, France",
        linkedinUrl="http://fr.linkedin.com/in/Jean-Dupont?trk=x",
        proEmail=" Jean.Dupont@Acme.fr ",
        linkedinEmail="jean@gmail.com",
        phoneNumbers="+33 6 12 34 56 78, +33 1 23 45 67 89",
        tags="VIP, salon 2024; vip",
        prospectList="Salon Lyon 2024",
    )
    assert result.errors == []
    assert result.client == {
        "first_name": "Jean",
        "last_name": "Dupont",
        "company": "Acme SAS",
        "job_title": "Directrice commerciale",
        "city": "Paris",
        "country": "France",
        "linkedin_url": "https://www.linkedin.com/in/jean-dupont",
        "email": "jean.dupont@acme.fr",
        "phone": "+33 6 12 34 56 78",
        "tags": ["VIP", "salon 2024"],
        "source": "social_selling",
        "source_detail": "Salon Lyon 2024",
        "stage": "new",
    }
    assert result.client["source"] in Source.values


def test_missing_or_empty_columns_leave_fields_out():
    result = map_waalaxy_record({"firstName": "Jean", "lastName": "Dupont", "linkedinUrl": ""})
    assert result.client == {"first_name": "Jean", "last_name": "Dupont", "source": "social_selling", "stage": "new"}
    assert result.interactions == []
    assert result.errors == []


def test_the_headline_stands_in_for_a_missing_job_title_shortened_when_too_long():
    assert prospect(occupation="CEO chez Acme").client["job_title"] == "CEO chez Acme"
    long_headline = "Fondateur " + "x" * 250
    job_title = prospect(occupation=long_headline).client["job_title"]
    assert len(job_title) == 200
    assert job_title.endswith("…")
    assert job_title.startswith("Fondateur xxx")


def test_the_linkedin_email_is_used_when_there_is_no_pro_email():
    assert prospect(linkedinEmail="Jean@Gmail.com").client["email"] == "jean@gmail.com"


@pytest.mark.parametrize(
    ("location", "city", "country"),
    [
        ("Paris, Île-de-France, France", "Paris", "France"),
        ("Lyon, France", "Lyon", "France"),
        ("France", None, "France"),
        ("Greater Paris Metropolitan Region", "Greater Paris Metropolitan Region", None),
        ("Région de Lyon", "Région de Lyon", None),
        ("", None, None),
    ],
)
def test_location_is_split_into_city_and_country(location, city, country):
    client = prospect(location=location).client
    assert client.get("city") == city
    assert client.get("country") == country


@pytest.mark.parametrize(
    "cell",
    [
        '["+33612345678", "+33123456789"]',
        '[{"number": "+33612345678"}]',
        "+33612345678 | +33123456789",
        "\n+33612345678",
    ],
)
def test_the_first_phone_number_is_kept(cell):
    assert prospect(phoneNumbers=cell).client["phone"] == "+33612345678"


def test_tags_may_be_a_json_list():
    assert prospect(tags='["chaud", "salon"]').client["tags"] == ["chaud", "salon"]


# Stage


@pytest.mark.parametrize(
    ("cells", "stage"),
    [
        ({}, "new"),
        ({"connectionRequestDate": "2024-03-01"}, "contacted"),
        ({"profileStatus": "pending", "connectionRequestDate": "2024-03-01T09:00:00.000Z"}, "contacted"),
        ({"emailSent": "true"}, "contacted"),
        ({"connectionRequestDate": "2024-03-01", "connectedAt": "2024-03-02"}, "connected"),
        ({"profileStatus": "Connected"}, "connected"),
        ({"connectedAt": "2024-03-02", "messageSent": "true", "messageReplied": "TRUE"}, "engaged"),
        ({"emailReplied": "oui"}, "engaged"),
        ({"lastLinkedinReplyDate": "2024-03-05"}, "engaged"),
        ({"lastEmailReplyDate": "05/03/2024"}, "engaged"),
        ({"state": "later_interested"}, "engaged"),
        ({"state": "interested", "connectedAt": "2024-03-02"}, "meeting"),
        ({"state": "Intéressé(e)"}, "meeting"),
        ({"state": "RDV pris"}, "meeting"),
        ({"state": "not_interested", "messageReplied": "true"}, "lost"),
        ({"state": "Not interested"}, "lost"),
        ({"state": "pas intéressé"}, "lost"),
        ({"state": "something new", "connectedAt": "2024-03-02"}, "connected"),
    ],
)
def test_stage_is_derived_from_state_and_activity(cells, stage):
    assert prospect(**cells).client["stage"] == stage


def test_every_derived_stage_is_a_crm_stage():
    stages = {
        waalaxy_stage(state=state, replied=replied, connected=connected, contacted=contacted)
        for state in ("", "interested", "not_interested", "later_interested")
        for replied in (True, False)
        for connected in (True, False)
        for contacted in (True, False)
    }
    assert stages == {"new", "contacted", "connected", "engaged", "meeting", "lost"}
    assert stages <= set(Stage.values)


# Interactions


def test_activity_dates_become_interactions_with_stable_keys():
    result = prospect(
        connectionRequestDate="2024-03-01T09:00:00.000Z",
        connectedAt="2024-03-02",
        firstMessageAt="2024-03-03T11:00:00+01:00",
        lastLinkedinMessageSentDate="05/03/2024 10:15",
        lastLinkedinReplyDate="2024-03-06 08:00:00",
        lastEmailSentDate="07/03/2024",
        lastEmailReplyDate="2024-03-08T10:00:00Z",
    )
    assert result.errors == []
    assert result.interactions == [
        {
            "kind": "linkedin",
            "direction": "outbound",
            "occurred_at": datetime(2024, 3, 1, 9, tzinfo=UTC),
            "subject": "LinkedIn invitation sent (Waalaxy)",
            "external_key": "waalaxy:jean-dupont:connectionRequestDate:2024-03-01T09:00:00+00:00",
        },
        {
            "kind": "linkedin",
            "direction": "inbound",
            "occurred_at": datetime(2024, 3, 2, tzinfo=PARIS),
            "subject": "LinkedIn invitation accepted (Waalaxy)",
            "external_key": "waalaxy:jean-dupont:connectedAt:2024-03-02",
        },
        {
            "kind": "linkedin",
            "direction": "outbound",
            "occurred_at": datetime(2024, 3, 3, 10, tzinfo=UTC),
            "subject": "First LinkedIn message sent (Waalaxy)",
            "external_key": "waalaxy:jean-dupont:firstMessageAt:2024-03-03T10:00:00+00:00",
        },
        {
            "kind": "linkedin",
            "direction": "outbound",
            "occurred_at": datetime(2024, 3, 5, 10, 15, tzinfo=PARIS),
            "subject": "LinkedIn message sent (Waalaxy)",
            "external_key": "waalaxy:jean-dupont:lastLinkedinMessageSentDate:2024-03-05T09:15:00+00:00",
        },
        {
            "kind": "linkedin",
            "direction": "inbound",
            "occurred_at": datetime(2024, 3, 6, 8, tzinfo=PARIS),
            "subject": "LinkedIn reply received (Waalaxy)",
            "external_key": "waalaxy:jean-dupont:lastLinkedinReplyDate:2024-03-06T07:00:00+00:00",
        },
        {
            "kind": "email",
            "direction": "outbound",
            "occurred_at": datetime(2024, 3, 7, tzinfo=PARIS),
            "subject": "Email sent (Waalaxy)",
            "external_key": "waalaxy:jean-dupont:lastEmailSentDate:2024-03-07",
        },
        {
            "kind": "email",
            "direction": "inbound",
            "occurred_at": datetime(2024, 3, 8, 10, tzinfo=UTC),
            "subject": "Email reply received (Waalaxy)",
            "external_key": "waalaxy:jean-dupont:lastEmailReplyDate:2024-03-08T10:00:00+00:00",
        },
    ]
    for interaction in result.interactions:
        assert interaction["occurred_at"].tzinfo is not None
        assert interaction["kind"] in InteractionKind.values
        assert interaction["direction"] in Direction.values


def test_keys_are_the_same_when_the_same_row_is_imported_again():
    cells = {"connectedAt": "2024-03-02", "firstMessageAt": "2024-03-03 11:00"}
    first = [interaction["external_key"] for interaction in prospect(**cells).interactions]
    again = [interaction["external_key"] for interaction in prospect(**cells).interactions]
    assert first == again
    assert len(set(first)) == 2


def test_date_only_keys_do_not_depend_on_the_time_zone():
    record = {"linkedinUrl": "linkedin.com/in/jean-dupont", "connectedAt": "2024-03-02"}
    in_paris = map_waalaxy_record(record, tz=PARIS).interactions[0]
    in_utc = map_waalaxy_record(record, tz=UTC).interactions[0]
    assert in_paris["external_key"] == in_utc["external_key"] == "waalaxy:jean-dupont:connectedAt:2024-03-02"


def test_a_last_message_equal_to_the_first_is_recorded_once():
    result = prospect(firstMessageAt="2024-03-03T11:00:00Z", lastLinkedinMessageSentDate="2024-03-03T11:00:00Z")
    assert [interaction["subject"] for interaction in result.interactions] == ["First LinkedIn message sent (Waalaxy)"]


def test_the_sales_navigator_id_identifies_a_prospect_without_profile_url():
    result = prospect(linkedinUrl="", salesNavigatorId="ACwAAA123", connectedAt="2024-03-02")
    assert result.interactions[0]["external_key"] == "waalaxy:ACwAAA123:connectedAt:2024-03-02"


def test_activity_without_any_way_to_identify_the_prospect_is_an_error():
    result = prospect(linkedinUrl="", connectedAt="2024-03-02")
    assert errors(result) == [("linkedinUrl", "a LinkedIn profile, Sales Navigator id or email is needed")]
    assert result.interactions == []


# Cells that cannot be read


def test_unreadable_cells_are_reported_with_their_column():
    result = prospect(
        messageReplied="peut-être",
        connectedAt="le 2 mars",
        proEmail="jean@",
        linkedinUrl="jean-dupont",
        phoneNumbers="appeler le standard",
        salesNavigatorId="ACwAAA123",
    )
    assert errors(result) == [
        (
            "linkedinUrl",
            "expected a LinkedIn profile address such as https://www.linkedin.com/in/jean-dupont, got “jean-dupont”",
        ),
        ("proEmail", "expected an email address such as name@example.com, got “jean@”"),
        ("phoneNumbers", "expected a phone number such as +33 6 12 34 56 78, got “appeler le standard”"),
        ("messageReplied", "expected yes or no (true/false, oui/non, 1/0), got “peut-être”"),
        ("connectedAt", "expected a date such as 31/12/2024 or 2024-12-31, got “le 2 mars”"),
    ]
    assert str(result.errors[0]).startswith("column “linkedinUrl”: expected a LinkedIn profile address")
    # The readable part of the row is still there for the report.
    assert result.client["first_name"] == "Jean"


def test_a_too_long_name_is_an_error_not_a_truncation():
    result = prospect(firstName="J" * 151)
    assert errors(result) == [("firstName", "expected at most 150 characters, got 151")]
    assert "first_name" not in result.client


# From the file to prospects


def test_an_export_read_from_a_file_maps_every_row():
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=WAALAXY_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerow(
        {
            "firstName": "Élodie",
            "lastName": "Martin",
            "occupation": "Head of Sales\nchez Acme",
            "linkedinUrl": "https://www.linkedin.com/in/elodie-martin",
            "phoneNumbers": "0612345678",
            "messageSent": "true",
            "messageReplied": "false",
            "connectionRequestDate": "2024-03-01",
            "connectedAt": "2024-03-02",
        }
    )
    writer.writerow({"firstName": "Paul", "lastName": "Durand", "salesNavigatorId": "ACwAAB9", "state": "interested"})
    table = read_table(buffer.getvalue().encode("utf-8-sig"), filename="waalaxy.csv", max_bytes=1_000_000)
    assert is_waalaxy_export(table.header)
    prospects = [
        (line, map_waalaxy_record(record, tz=PARIS)) for line, record in table.records(canonical_header(table.header))
    ]
    assert [line for line, _ in prospects] == [2, 4]
    elodie, paul = (result for _, result in prospects)
    assert elodie.client["phone"] == "0612345678"
    assert elodie.client["job_title"] == "Head of Sales\nchez Acme"
    assert elodie.client["stage"] == "connected"
    assert len(elodie.interactions) == 2
    assert paul.client["stage"] == "meeting"
    assert paul.errors == elodie.errors == []
