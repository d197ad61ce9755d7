"""Staff pages for a campaign's whole life without the Django admin: campaigns and their
settings, the team (memberships, invitations, a CSV of users, progress), the clip browser
and the clip page."""
