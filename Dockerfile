FROM python:3.12-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY domain domain
COPY activities activities
COPY workflows workflows
COPY starter starter
COPY migrations migrations
COPY templates templates
COPY worker.py ./
COPY deploy deploy
RUN pip install --no-cache-dir .
ENV CRM_TEMPLATES_DIR=/app/templates
CMD ["crm-worker"]
