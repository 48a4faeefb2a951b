#!/usr/bin/env bash
# examples/mongo_user/mongo.c (the MongoDB side of the mongo-user example)
# against the real MongoDB-wire server: test/mongo/check_mongo.c, which
# fails without CRDKIT_TEST_MONGO_URI rather than skipping.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
"${CRDKIT_BUILD:-$top/build/asan}/test/mongo/check-mongo"
