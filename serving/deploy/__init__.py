"""Build-time tooling for the cloud profile: Lambda packages, the SAM template, deploy and rollback.

Never imported by a running function (it needs MLflow and boto3's control-plane calls), and
left out of every package it builds.
"""
