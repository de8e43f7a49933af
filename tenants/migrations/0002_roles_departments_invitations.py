import django.contrib.postgres.fields
import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

BUILTIN = {
    "admin": ("Admin", "Everything, including members, roles, keys and settings"),
    "marketer": ("Marketer", "Builds segments, creates and launches campaigns"),
    "analyst": ("Analyst", "Reads segments and reports, exports data"),
    "viewer": ("Viewer", "Reads everything except personal data"),
}
DEPARTMENTS = ["Marketing", "Sales", "Product", "Customer Success", "Support"]


def roles_from_strings(apps, schema_editor):
    """Give every tenant its built-in roles and departments and point memberships at them."""
    Tenant = apps.get_model("tenants", "Tenant")
    Role = apps.get_model("tenants", "Role")
    Department = apps.get_model("tenants", "Department")
    Membership = apps.get_model("tenants", "TenantMembership")
    for tenant in Tenant.objects.exclude(schema_name="public"):
        roles = {
            key: Role.objects.create(tenant=tenant, key=key, name=name, description=text, is_builtin=True)
            for key, (name, text) in BUILTIN.items()
        }
        for name in DEPARTMENTS:
            Department.objects.create(tenant=tenant, name=name)
        for membership in Membership.objects.filter(tenant=tenant):
            membership.role_ref = roles.get(membership.role, roles["viewer"])
            membership.save(update_fields=["role_ref"])


def roles_to_strings(apps, schema_editor):
    Membership = apps.get_model("tenants", "TenantMembership")
    for membership in Membership.objects.select_related("role_ref"):
        membership.role = membership.role_ref.key if membership.role_ref.is_builtin else "viewer"
        membership.save(update_fields=["role"])


class Migration(migrations.Migration):
    dependencies = [("tenants", "0001_initial")]

    operations = [
        migrations.CreateModel(
            name="Role",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.SlugField(max_length=64)),
                ("name", models.CharField(max_length=100)),
                ("description", models.CharField(blank=True, max_length=300)),
                ("is_builtin", models.BooleanField(default=False)),
                ("permissions", django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=64), blank=True, default=list, size=None)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("tenant", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="roles", to="tenants.tenant")),
            ],
            options={"ordering": ["-is_builtin", "name"]},
        ),
        migrations.AddConstraint(
            model_name="role",
            constraint=models.UniqueConstraint(fields=("tenant", "key"), name="role_tenant_key_unique"),
        ),
        migrations.AddConstraint(
            model_name="role",
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower("name"), models.F("tenant"), name="role_tenant_name_ci_unique"),
        ),
        migrations.CreateModel(
            name="Department",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=100)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("tenant", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="departments", to="tenants.tenant")),
            ],
            options={"ordering": ["name"]},
        ),
        migrations.AddConstraint(
            model_name="department",
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower("name"), models.F("tenant"), name="department_tenant_name_ci_unique"),
        ),
        migrations.AddField(
            model_name="tenantmembership",
            name="role_ref",
            field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to="tenants.role"),
        ),
        migrations.AddField(
            model_name="tenantmembership",
            name="department",
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="members", to="tenants.department"),
        ),
        migrations.RunPython(roles_from_strings, roles_to_strings),
        migrations.RemoveField(model_name="tenantmembership", name="role"),
        migrations.RenameField(model_name="tenantmembership", old_name="role_ref", new_name="role"),
        migrations.AlterField(
            model_name="tenantmembership",
            name="role",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="memberships", to="tenants.role"),
        ),
        migrations.CreateModel(
            name="Invitation",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("email", models.EmailField(max_length=254)),
                ("token_hash", models.CharField(max_length=64, unique=True)),
                ("expires_at", models.DateTimeField()),
                ("accepted_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("accepted_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                ("department", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to="tenants.department")),
                ("invited_by", models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+", to=settings.AUTH_USER_MODEL)),
                ("role", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="invitations", to="tenants.role")),
                ("tenant", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="invitations", to="tenants.tenant")),
            ],
            options={"ordering": ["-created_at"]},
        ),
        migrations.AddConstraint(
            model_name="invitation",
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower("email"), models.F("tenant"), condition=models.Q(("accepted_at__isnull", True), ("revoked_at__isnull", True)), name="invitation_open_email_unique"),
        ),
    ]
