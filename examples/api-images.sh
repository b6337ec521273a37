#!/usr/bin/env bash
# Submits an API-channel ID + selfie job with images as multipart/form-data:
# a "request" part with the JSON first, then FRONT, BACK and FACE files.
set -euo pipefail
cd "$(dirname "$0")"
INGEST=${INGEST:-http://127.0.0.1:8080}
KEY=${KYCPIPE_API_KEY:-kycpipe-local-dev-key}
curl -sS -X POST "$INGEST/v1/verifications" \
  -H "Authorization: Bearer $KEY" \
  -F "request=@api-images.request.json;type=application/json" \
  -F "FRONT=@images/front.png;type=image/png" \
  -F "BACK=@images/back.png;type=image/png" \
  -F "FACE=@images/face.jpg;type=image/jpeg"
echo
