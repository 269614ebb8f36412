# The phix image used by docker-compose.yml (API and DICOM gateway share it).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /opt/phix
COPY pyproject.toml README.md ./
COPY src ./src
COPY profiles ./profiles
COPY dicom ./dicom
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/phix phix \
    && mkdir -p /var/lib/phix && chown phix /var/lib/phix
USER phix
EXPOSE 8080 11112
# In a container the API must listen on all interfaces; outside one, phix binds 127.0.0.1.
CMD ["phix", "serve", "--host", "0.0.0.0", "--port", "8080"]
