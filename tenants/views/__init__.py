"""The public site (sign-up, log-in hand-off), invitations, and the settings pages for
the workspace, its members, roles and departments."""
