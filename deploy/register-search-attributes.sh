#!/bin/sh
# The default namespace and the CRM's custom search attributes; without them a
# journey that upserts its stage fails its workflow task in a loop.
set -eu
temporal operator namespace describe --namespace "$NAMESPACE" >/dev/null 2>&1 \
  || temporal operator namespace create --namespace "$NAMESPACE" --retention 30d
for attribute in CrmJourney=Keyword CrmStage=Keyword CrmCustomerId=Keyword \
                 CrmOwnerId=Keyword CrmTier=Keyword CrmSlaDeadline=Datetime \
                 CrmStep=Keyword CrmVersion=Keyword CrmIncident=Keyword; do
  name=${attribute%%=*}
  kind=${attribute#*=}
  temporal operator search-attribute create --namespace "$NAMESPACE" --name "$name" --type "$kind" \
    || temporal operator search-attribute list --namespace "$NAMESPACE" | grep -q "$name"
done
