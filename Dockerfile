# The auditlogs image: the official Airflow image plus the locked requirements and the DAG package, so every
# component (scheduler, dag-processor, triggerer, Celery workers, API server) imports the same code; the
# triggerer needs auditlogs.alerts for the Deadline Alert callbacks, the workers the whole package.
FROM apache/airflow:3.3.2-python3.11

COPY requirements.txt /requirements.txt
# Pinning apache-airflow again keeps pip from moving the image's Airflow while it resolves the lock.
RUN pip install --no-cache-dir "apache-airflow==3.3.2" -r /requirements.txt

COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/airflow/include/

# `python -m auditlogs.setup` and `python -m sandbox serve` run outside Airflow's own plugins path handling.
ENV PYTHONPATH=/opt/airflow/plugins:/opt/airflow/include \
    AUDITLOGS_CONFIG=/opt/airflow/include/sources.yaml
