"""factory_boy factories for the CRM records."""

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from crm import models


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if create and extracted:
            self.groups.add(Group.objects.get_or_create(name=extracted)[0])
        if create:
            self.save()


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Client

    first_name = factory.Faker("first_name", locale="fr_FR")
    last_name = factory.Faker("last_name", locale="fr_FR")
    email = factory.Sequence(lambda n: f"client{n}@example.com")
    company = factory.Faker("company", locale="fr_FR")
    city = "Lyon"
    country = "France"


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Category
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Category {n}")


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Product

    name = factory.Sequence(lambda n: f"Product {n}")
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    category = factory.SubFactory(CategoryFactory)
    price = Decimal("25.00")


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Purchase

    client = factory.SubFactory(ClientFactory)
    reference = factory.Sequence(lambda n: f"ORD-{n:06d}")
    purchased_on = factory.LazyFunction(lambda: timezone.localdate() - timedelta(days=30))
    amount = Decimal("120.00")


class InteractionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Interaction

    client = factory.SubFactory(ClientFactory)
    kind = models.InteractionKind.CALL
    subject = "Call"


class FollowUpFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.FollowUp

    client = factory.SubFactory(ClientFactory)
    assignee = factory.SubFactory(UserFactory)
    due_at = factory.LazyFunction(timezone.now)
    title = "Call back"


class PersonaFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Persona

    name = factory.Sequence(lambda n: f"Camille {n}")
    bio = "Runs a small agency."


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Segment

    name = factory.Sequence(lambda n: f"Segment {n}")
    filters = factory.LazyFunction(lambda: {"lifecycle": "client"})


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Tag
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"tag{n}")
