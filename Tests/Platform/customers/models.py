from django.conf import settings
from django.db import models
from django_tenants.models import DomainMixin, TenantMixin


class Client(TenantMixin):
    """A clinic: its schema (schema_name) holds its data."""

    name = models.CharField(max_length=100)
    # The test database's clinic schemas exist already.
    auto_create_schema = False


class Domain(DomainMixin):
    """A host name of a clinic (django-tenants resolves each request's clinic from it)."""


class ClinicAdmin(models.Model):
    """Who may manage a clinic's backups: a user may administer several clinics."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    client = models.ForeignKey(Client, on_delete=models.CASCADE)
    is_admin = models.BooleanField(default=True)

    class Meta:
        unique_together = [("user", "client")]
