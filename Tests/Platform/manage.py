#!/usr/bin/env python3
"""The clinic platform's shape, for tenant-backup's tests: Django + django-tenants + Django REST framework's
tokens, on the test database (PG* variables). Not an application: models and migrations only."""
import os
import sys

if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
