#!/usr/bin/env python3
"""Seeds the platform's tables (after `manage.py migrate_schemas --shared`) with django-tenants' public
tenant, the two clinics the test database has, their domains, and one DRF token per kind of user; prints the tokens as JSON:
dual (admin of both clinics), other (admin of mindcare only), inactive (admin of bienestar, deactivated),
member (of bienestar, not an admin)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")
import django  # noqa: E402

django.setup()
from django.contrib.auth.models import User  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from customers.models import ClinicAdmin, Client, Domain  # noqa: E402

# django-tenants' own tenant for the public site: never a clinic, and a restore keeps it.
public = Client(schema_name="public", name="Platform")
public.save()
Domain.objects.create(domain="clinic.test", tenant=public, is_primary=True)
clinics = {}
for schema in ["bienestar", "mindcare"]:
    client = Client(schema_name=schema, name=schema.title())
    client.save()
    Domain.objects.create(domain=f"{schema}.clinic.test", tenant=client, is_primary=True)
    clinics[schema] = client
users = {
    "dual": (True, [("bienestar", True), ("mindcare", True)]),
    "other": (True, [("mindcare", True)]),
    "inactive": (False, [("bienestar", True)]),
    "member": (True, [("bienestar", False)]),
}
tokens = {}
for name, (active, memberships) in users.items():
    user = User.objects.create_user(username=name, password=None, is_active=active)
    for schema, is_admin in memberships:
        ClinicAdmin.objects.create(user=user, client=clinics[schema], is_admin=is_admin)
    tokens[name] = Token.objects.create(user=user).key
print(json.dumps(tokens))
