"""Deployment checks and artefacts: the Terraform/settings sync, the deploy check, the Glue wheel."""
