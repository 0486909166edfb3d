# vscard in a container: Debian 12, pcscd, the vsmartcard vpcd driver,
# OpenSC, pyscard and vscard. The entry point is examples/ci/vscard-ci.sh
# run: it starts pcscd and `vscard serve` (the demo card, PIN 123456, or
# VSCARD_CARD), waits until pcscd reports the card present
# (`vscard ctl ... wait`), then runs the container's command, or serves
# until stopped. vscard's test of the CI recipe (cli/tests/ci_recipe.rs)
# runs these same steps.
#
#   docker build -t vscard .
#   docker run --rm vscard vscard-ci.sh check     # ready, log in twice, exit 0
#   docker run --rm -v "$PWD:/w" -w /w vscard ./run-your-tests
#   docker run --rm vscard                        # serve until docker stop
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# A release build, packaged as the README says.
RUN cargo install cargo-deb --version 3.8.0 --locked \
    && cargo deb -p vscard --locked -o /dist/

FROM debian:bookworm-slim
COPY --from=build /dist/ /tmp/dist/
COPY examples/ci/vscard-ci.sh /usr/local/bin/vscard-ci.sh
RUN VSCARD_DEB="$(ls /tmp/dist/vscard_*.deb)" vscard-ci.sh install \
    && rm -rf /tmp/dist /var/lib/apt/lists/*
ENV VSCARD_CI_DIR=/var/lib/vscard-ci
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/vscard-ci.sh", "run"]
