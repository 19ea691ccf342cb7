# The one `shop` binary; docker-compose.yml runs it in different roles.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin shop

FROM debian:bookworm-slim
RUN useradd --system --home /app shop && mkdir -p /app/data && chown shop /app/data
WORKDIR /app
COPY --from=build /src/target/release/shop /usr/local/bin/shop
COPY schema ./schema
USER shop
ENTRYPOINT ["shop"]
