"""Public-schema models: the paying companies (tenants), their domains, and people who log in."""

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Lower
from django_tenants.models import DomainMixin, TenantMixin

from tenants.permissions import BUILTIN_ROLES


class Tenant(TenantMixin):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        SUSPENDED = "suspended", "Suspended"

    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # tenant_create creates the schema explicitly (inside its transaction) and never
    # drops one: deleting a company's data is a separate, deliberate operation.
    auto_create_schema = False
    auto_drop_schema = False

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_public(self) -> bool:
        from django_tenants.utils import get_public_schema_name

        return self.schema_name == get_public_schema_name()


class Domain(DomainMixin):
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["domain"]


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra):
        if not email:
            raise ValueError("email is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who logs in; global, may belong to several tenants."""

    email = models.EmailField(max_length=254, unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        constraints = [models.UniqueConstraint(Lower("email"), name="user_email_ci_unique")]

    def __str__(self) -> str:
        return self.email


class Role(models.Model):
    """A named set of permissions in one tenant. Built-in roles take their permissions
    from tenants.permissions (so the catalogue can grow); custom roles store theirs."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="roles")
    key = models.SlugField(max_length=64)
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)
    is_builtin = models.BooleanField(default=False)
    permissions = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-is_builtin", "name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "key"], name="role_tenant_key_unique"),
            models.UniqueConstraint(Lower("name"), "tenant", name="role_tenant_name_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    def permission_set(self) -> frozenset[str]:
        if self.is_builtin and self.key in BUILTIN_ROLES:
            return BUILTIN_ROLES[self.key][2]
        return frozenset(self.permissions)


class Department(models.Model):
    """A team inside the tenant (Marketing, Sales…): owns plays, tags segments."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="departments")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), "tenant", name="department_tenant_name_ci_unique")]

    def __str__(self) -> str:
        return self.name


class TenantMembership(models.Model):
    """A user's seat in one tenant, with the role that decides what they may do there."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="memberships")
    department = models.ForeignKey(
        Department, on_delete=models.SET_NULL, null=True, blank=True, related_name="members"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["tenant__name", "user__email"]
        constraints = [
            models.UniqueConstraint(fields=["user", "tenant"], name="membership_user_tenant_unique")
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role.key})"

    @property
    def permissions(self) -> frozenset[str]:
        if not hasattr(self, "_permissions"):
            self._permissions = self.role.permission_set()
        return self._permissions

    def has(self, permission: str) -> bool:
        return permission in self.permissions

    @property
    def is_admin(self) -> bool:
        return self.role.is_builtin and self.role.key == "admin"


class Invitation(models.Model):
    """An emailed, expiring, single-use invitation to join a tenant with a role."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="invitations")
    department = models.ForeignKey(Department, on_delete=models.SET_NULL, null=True, blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, related_name="+")
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one open invitation per address and tenant.
            models.UniqueConstraint(
                Lower("email"), "tenant",
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
                name="invitation_open_email_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.tenant}"

    def is_open(self, *, now) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now
