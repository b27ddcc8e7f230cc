# syntax=docker/dockerfile:1
# One image recipe for both services (they have the same shape). The build context is the repository root:
#   docker build --build-arg SERVICE=prompt-service -t autoforge/prompt-service .
#   docker build --build-arg SERVICE=evaluation-service --build-arg GRPC_PORT=50052 --build-arg CONNECT_PORT=8082 \
#     -t autoforge/evaluation-service .
# (docker-compose.yml passes these.) Base pinned by exact tag (Node 20, as package.json "engines" asks:
# >= 20.19); bump it deliberately.
ARG NODE_IMAGE=node:20.20.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
ARG SERVICE
RUN case "${SERVICE}" in prompt-service|evaluation-service) ;; \
      *) echo "build with --build-arg SERVICE=prompt-service or SERVICE=evaluation-service" >&2; exit 1 ;; esac
WORKDIR /app
# All workspace packages' sources (a new package under packages/ needs no edit here; .dockerignore drops their
# node_modules, dist and build info) and this service; the other service is not sent to the build.
COPY package.json package-lock.json tsconfig.base.json ./
COPY packages packages
COPY services/${SERVICE} services/${SERVICE}
COPY scripts/mint-token.mjs scripts/
# Only this workspace and what it depends on; the root is included for its devDependencies (typescript).
RUN npm ci -w "services/${SERVICE}" --include-workspace-root --no-audit --no-fund
# tsc -b builds the packages this service references first; then the dev dependencies go, and /out gets what
# runs: manifests, dist/ of what was built, production node_modules (workspace links included) and the
# migrations, which the service reads at start from src/db/migrations (see src/db/migrations-folder.ts).
RUN npx tsc -b "services/${SERVICE}/tsconfig.build.json" \
  && npm prune --omit=dev -w "services/${SERVICE}" --include-workspace-root --no-audit --no-fund \
  && mkdir -p /out/scripts "/out/services/${SERVICE}/src/db" \
  && cp -a package.json node_modules /out/ \
  && cp -a scripts/mint-token.mjs /out/scripts/ \
  && for dir in packages/* "services/${SERVICE}"; do \
       if [ -d "$dir/dist" ]; then \
         mkdir -p "/out/$dir" && cp -a "$dir/package.json" "$dir/dist" "/out/$dir/" \
         && if [ -d "$dir/node_modules" ]; then cp -a "$dir/node_modules" "/out/$dir/"; fi; \
       fi; \
     done \
  && cp -a "services/${SERVICE}/src/db/migrations" "/out/services/${SERVICE}/src/db/"

FROM ${NODE_IMAGE} AS runtime
ARG SERVICE
# the service's default ports (architecture §7a): prompt-service 50051/8081, evaluation-service 50052/8082
ARG GRPC_PORT=50051
ARG CONNECT_PORT=8081
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    GRPC_PORT=${GRPC_PORT} \
    CONNECT_PORT=${CONNECT_PORT} \
    DATABASE_URL=file:/data/${SERVICE}.db
# Code stays root-owned (read-only for the service); the service's user (node, uid 1000, from the base image)
# may write only /data, for a file: database when no sqld/Turso URL is given.
COPY --from=build /out /app
RUN mkdir -p /data && chown node:node /data
USER node
WORKDIR /app/services/${SERVICE}
EXPOSE ${GRPC_PORT} ${CONNECT_PORT}
# Slim images have no curl: Node's fetch asks the Connect port's /healthz.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.CONNECT_PORT + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/main.js"]
