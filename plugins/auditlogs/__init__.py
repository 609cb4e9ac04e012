"""auditlogs: security audit logs from SaaS APIs into Google Cloud Storage, one Airflow DAG per source."""

__version__ = "0.1.0"
