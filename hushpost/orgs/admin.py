from django.contrib import admin

from hushpost.orgs.models import Domain, Organization


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "sender_name", "is_active", "created_at")
    search_fields = ("name", "slug", "domains__name")
    inlines = [DomainInline]
    readonly_fields = ("created_at",)
