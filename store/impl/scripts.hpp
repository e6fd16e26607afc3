#pragma once
// The Lua scripts of store/scripts/, embedded at build time (impl/embed_scripts.cmake).
#include <string_view>

namespace sagaflow::store::impl {

extern const std::string_view kApplyScript;             // scripts/apply.lua
extern const std::string_view kOutboxClaimScript;       // scripts/outbox_claim.lua
extern const std::string_view kClaimDeadlinesScript;    // scripts/claim_deadlines.lua
extern const std::string_view kClaimParkedScript;       // scripts/claim_parked.lua
extern const std::string_view kGcraScript;              // scripts/gcra.lua
extern const std::string_view kRecordDeliveriesScript;  // scripts/record_deliveries.lua
extern const std::string_view kClaimDeliveriesScript;   // scripts/claim_deliveries.lua
extern const std::string_view kUpdateDeliveryScript;    // scripts/update_delivery.lua
extern const std::string_view kCasScript;               // scripts/cas.lua
extern const std::string_view kDeadLettersScript;       // scripts/dead_letters.lua

}  // namespace sagaflow::store::impl
