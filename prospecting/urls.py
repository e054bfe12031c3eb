"""URLs of prospecting, namespaced ``prospecting:``."""

from django.urls import include, path

from prospecting.views import campaigns, events, offers, referrals, unsubscribe

app_name = "prospecting"

urlpatterns = [
    path("campaigns/", campaigns.campaign_list, name="campaign-list"),
    path("campaigns/new/", campaigns.campaign_create, name="campaign-create"),
    path("campaigns/<int:pk>/", campaigns.campaign_detail, name="campaign-detail"),
    path("campaigns/<int:pk>/edit/", campaigns.campaign_edit, name="campaign-edit"),
    path("campaigns/<int:pk>/progress/", campaigns.campaign_progress, name="campaign-progress"),
    path("campaigns/<int:pk>/launch/", campaigns.campaign_launch, name="campaign-launch"),
    path("campaigns/<int:pk>/cancel/", campaigns.campaign_cancel, name="campaign-cancel"),
    path("campaigns/<int:pk>/cost/", campaigns.campaign_cost, name="campaign-cost"),
    path("campaigns/<int:pk>/steps/new/", campaigns.campaign_step_create, name="campaign-step-create"),
    path("campaigns/steps/<int:pk>/edit/", campaigns.campaign_step_edit, name="campaign-step-edit"),
    path("campaigns/steps/<int:pk>/delete/", campaigns.campaign_step_delete, name="campaign-step-delete"),
    path("offers/", offers.offer_list, name="offer-list"),
    path("offers/new/", offers.offer_create, name="offer-create"),
    path("offers/<int:pk>/", offers.offer_detail, name="offer-detail"),
    path("offers/<int:pk>/edit/", offers.offer_edit, name="offer-edit"),
    path("offers/<int:pk>/redeem/", offers.offer_redeem, name="offer-redeem"),
    path("ambassadors/", referrals.ambassadors, name="ambassadors"),
    path("events/", events.event_list, name="event-list"),
    path("events/new/", events.event_create, name="event-create"),
    path("events/<int:pk>/", events.event_detail, name="event-detail"),
    path("events/<int:pk>/register/", events.event_register, name="event-register"),
    path("events/<int:pk>/import/", events.event_import, name="event-import"),
    path("unsubscribe/<str:token>/", unsubscribe.unsubscribe, name="unsubscribe"),
    path("rules/", include("prospecting.urls_rules")),
    path("imports/", include("prospecting.urls_imports")),
]
