# Build stage: install everything from the lock file and compile.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

# Runtime stage: production dependencies and the compiled app, as the unprivileged `node` user.
# SIGTERM (docker stop) drains requests in flight, then exits 0 (SHUTDOWN_GRACE_PERIOD, 10 s).
FROM node:24-bookworm-slim
ENV NODE_ENV=production PORT=8080
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/live').then(r=>process.exit(r.ok?0:1)).catch(()=>process.exit(1))"
# V8 heap settings of `npm run start:prod` (README "Performance": peak RSS about 150 MiB under load).
CMD ["node", "--max-semi-space-size=8", "--heap-growing-percent=20", "dist/main.js"]
