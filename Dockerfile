# The same install and start as the README, in a slim image, as a non-root user.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    COSTEST_HOST=0.0.0.0 COSTEST_PORT=50051 COSTEST_DATA_DIR=/var/lib/costestimator COSTEST_LOG_FORMAT=json

RUN useradd --create-home --uid 10001 costest && mkdir -p /var/lib/costestimator && chown costest /var/lib/costestimator
WORKDIR /app
COPY pyproject.toml README.md ./
COPY server ./server
COPY generated ./generated
RUN pip install --no-cache-dir .

USER costest
EXPOSE 50051
# Listening beyond loopback needs caller authentication: pass COSTEST_AUTH_HS256_SECRET (or an RS256 public key
# file) plus COSTEST_AUTH_ISSUER / COSTEST_AUTH_AUDIENCE at `docker run`; the server refuses to start without them.
# With COSTEST_TLS_CERT_FILE set the health check speaks TLS: give it COSTEST_HEALTHCHECK_CA_FILE (and the
# certificate's name in COSTEST_HEALTHCHECK_SERVER_NAME; for mTLS a client certificate, see the README).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["python", "-m", "server.healthcheck"]
CMD ["python", "-m", "server"]
