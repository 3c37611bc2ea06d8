# syntax=docker/dockerfile:1
# Terrapin: webhook server + Temporal worker in one process (`node app/main.ts`), TypeScript run natively
# by Node 24. Build: docker build -t terrapin .   Run: see .env.example (TERRAPIN_DATA_DIR=/data is a volume).

ARG NODE_IMAGE=node:24-slim
ARG TERRAFORM_VERSION=1.11.4
# Temporal CLI for the embedded dev server (no TEMPORAL_ADDRESS). "none" leaves it out: set TEMPORAL_ADDRESS,
# or let the SDK download the CLI into /data/temporal/cli at first start.
ARG TEMPORAL_CLI_VERSION=1.9.1

# ---- terraform, verified: HashiCorp's signature on the checksums, then the checksum of the zip ----------
FROM ${NODE_IMAGE} AS terraform
ARG TERRAFORM_VERSION
ARG TARGETARCH
# HashiCorp's release signing key (https://www.hashicorp.com/trust/security).
ARG HASHICORP_KEY_FINGERPRINT=C874011F0AB405110D02105534365D9472D7468F
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg unzip \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /tmp/terraform
RUN set -eux; \
    arch="${TARGETARCH:-amd64}"; \
    base="https://releases.hashicorp.com/terraform/${TERRAFORM_VERSION}"; \
    zip="terraform_${TERRAFORM_VERSION}_linux_${arch}.zip"; \
    sums="terraform_${TERRAFORM_VERSION}_SHA256SUMS"; \
    curl -fsSLO "${base}/${zip}"; \
    curl -fsSLO "${base}/${sums}"; \
    curl -fsSLO "${base}/${sums}.sig"; \
    curl -fsSL https://www.hashicorp.com/.well-known/pgp-key.txt | gpg --batch --import; \
    gpg --batch --with-colons --fingerprint | grep -q "^fpr:::::::::${HASHICORP_KEY_FINGERPRINT}:"; \
    gpg --batch --verify "${sums}.sig" "${sums}"; \
    grep " ${zip}\$" "${sums}" | sha256sum -c -; \
    unzip -q "${zip}" terraform; \
    install -m 0755 terraform /usr/local/bin/terraform; \
    /usr/local/bin/terraform version

# ---- temporal CLI (optional), verified against the release's checksums ---------------------------------
FROM ${NODE_IMAGE} AS temporal
ARG TEMPORAL_CLI_VERSION
ARG TARGETARCH
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /tmp/temporal
RUN set -eux; \
    mkdir -p /out; \
    if [ "${TEMPORAL_CLI_VERSION}" != "none" ]; then \
      arch="${TARGETARCH:-amd64}"; \
      base="https://github.com/temporalio/cli/releases/download/v${TEMPORAL_CLI_VERSION}"; \
      tarball="temporal_cli_${TEMPORAL_CLI_VERSION}_linux_${arch}.tar.gz"; \
      curl -fsSLO "${base}/${tarball}"; \
      curl -fsSLO "${base}/checksums.txt"; \
      grep " ${tarball}\$" checksums.txt | sha256sum -c -; \
      tar -xzf "${tarball}" temporal; \
      install -m 0755 temporal /out/temporal; \
      /out/temporal --version; \
    fi

# ---- runtime ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE}
# git for checkouts, ssh for git+ssh module sources, tini to reap terraform's children and forward signals,
# bubblewrap to run terraform and hooks sandboxed (activities/sandbox.ts), slirp4netns to give the sandbox
# a network of its own without this host's loopback (activities/sandbox-network.ts).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git openssh-client tini bubblewrap slirp4netns \
 && rm -rf /var/lib/apt/lists/*
COPY --from=terraform /usr/local/bin/terraform /usr/local/bin/terraform
COPY --from=temporal /out/ /usr/local/bin/

WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY app ./app
COPY activities ./activities
COPY shared ./shared
COPY workflows ./workflows
COPY comment-templates ./comment-templates
# The operator's CLI: `docker exec <container> terrapin status -r owner/repo` (same settings as the server).
COPY bin ./bin
COPY cli ./cli
COPY operator ./operator
RUN ln -s /app/bin/terrapin.mjs /usr/local/bin/terrapin

ENV TERRAPIN_DATA_DIR=/data \
    PORT=3000
# The bot runs as the unprivileged `node` user (uid 1000), never root; its data dir is its own (0700).
# Pull request code (terraform, providers, hooks) runs inside bubblewrap as `nobody` in its own user and PID
# namespaces, seeing only its checkout, not /data, /app, the key or this process's environment.
# bubblewrap needs unprivileged user namespaces inside the container. Docker's default seccomp profile and
# masked /proc paths block them; run with, for example:
#   docker run --security-opt seccomp=unconfined --security-opt systempaths=unconfined \
#              --security-opt apparmor=unconfined ...
# (or a seccomp profile that allows clone/unshare with CLONE_NEWUSER, and on hosts that restrict user
# namespaces, sysctl kernel.unprivileged_userns_clone=1 / kernel.apparmor_restrict_unprivileged_userns=0).
# The worker probes the sandbox at start: with runner.sandbox "auto" (default) a host where it does not
# work refuses every plan with a message on the PR; "bubblewrap" refuses to start; "none" opts out.
RUN mkdir -p /data && chown node:node /data && chmod 0700 /data
USER node
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.PORT || 3000}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "app/main.ts"]
