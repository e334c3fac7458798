// The bad-input catalogue of AlertService.ListAlerts, AckAlert and WatchAlerts.
// Each case is its own tenant; bad_input_test.cc runs them all (see bad_input_fixture.h).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/integration/services/bad_input/bad_input_cases.h"
#include "tests/integration/services/bad_input/bad_input_fixture.h"

namespace onestory::testing::bad_input {

std::vector<BadInputCase> AlertCases() {
  // The tenant holds two open alerts, raised by `prepare`.
  auto list = [](std::function<void(v1::ListAlertsRequest&, Api&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::ListAlertsRequest r = ListAlertsOf(s);
      spoil(r, api, s);
      return api.ListAlerts(r);
    };
  };
  // Otherwise valid acknowledgements of the newest alert: one let through would acknowledge it.
  auto ack = [](std::function<void(v1::AckAlertRequest&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::AckAlertRequest r = AckOf(s, NewestAlert(api, s).alert_id());
      spoil(r, s);
      return api.AckAlert(r);
    };
  };
  auto watch = [](std::function<void(v1::WatchAlertsRequest&, Api&, const State&)> spoil) {
    return [spoil](Api& api, const State& s) {
      v1::WatchAlertsRequest r = WatchAlertsOf(s);
      spoil(r, api, s);
      return api.WatchAlerts(r);
    };
  };
  using List = v1::ListAlertsRequest;
  using Ack = v1::AckAlertRequest;
  using Watch = v1::WatchAlertsRequest;
  return {
      {.name = "ListAlertsTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = list([](List& r, Api&, const State&) { r.clear_tenant(); }),
       .prepare = AlertsForSetup},
      {.name = "ListAlertsPageSizeNegative",
       .code = kInvalid,
       .message_names = {"page_size"},
       .send = list([](List& r, Api&, const State&) { r.set_page_size(-1); }),
       .prepare = AlertsForSetup},
      {.name = "ListAlertsPageSize501",
       .code = kInvalid,
       .message_names = {"page_size"},
       .send = list([](List& r, Api&, const State&) { r.set_page_size(501); }),
       .prepare = AlertsForSetup},
      {.name = "ListAlertsPageTokenMalformed",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](List& r, Api&, const State&) { r.set_page_token("not a token!"); }),
       .prepare = AlertsForSetup},
      {.name = "ListAlertsPageTokenBase64Garbage",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](List& r, Api&, const State&) { r.set_page_token("cDF8eHx5"); }),
       .prepare = AlertsForSetup},
      {.name = "ListAlertsPageTokenIsTimelineCursor",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](List& r, Api&, const State& s) { r.set_page_token(s.cursor); }),
       .prepare = AlertsForSetup},
      {.name = "ListAlertsPageTokenIsTimelinePageToken",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](List& r, Api&, const State& s) { r.set_page_token(s.page_token); }),
       .prepare = AlertsForSetup},
      {.name = "ListAlertsPageTokenOfAnotherTenant",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](List& r, Api& api, const State& s) {
         r.set_page_token(AlertsPageToken(api, s));
         r.set_tenant(absl::StrCat(s.tenant, "x"));
       }),
       .prepare = AlertsForSetup},
      // The token pages open alerts only.
      {.name = "ListAlertsPageTokenWithAcknowledged",
       .code = kInvalid,
       .message_names = {"page_token"},
       .send = list([](List& r, Api& api, const State& s) {
         r.set_page_token(AlertsPageToken(api, s));
         r.set_include_acknowledged(true);
       }),
       .prepare = AlertsForSetup},
      {.name = "AckAlertTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = ack([](Ack& r, const State&) { r.clear_tenant(); }),
       .prepare = AlertsForSetup},
      {.name = "AckAlertIdEmpty",
       .code = kInvalid,
       .message_names = {"alert_id"},
       .send = ack([](Ack& r, const State&) { r.clear_alert_id(); }),
       .prepare = AlertsForSetup},
      {.name = "AckAlertIdOver512Bytes",
       .code = kInvalid,
       .message_names = {"alert_id"},
       .send = ack([](Ack& r, const State&) { r.set_alert_id(std::string(513, 'a')); }),
       .prepare = AlertsForSetup},
      {.name = "AckAlertIdNewline",
       .code = kInvalid,
       .message_names = {"alert_id"},
       .send = ack([](Ack& r, const State&) { r.set_alert_id(absl::StrCat(r.alert_id(), "\n")); }),
       .prepare = AlertsForSetup},
      {.name = "AckAlertActorMissing",
       .code = kInvalid,
       .message_names = {"actor.type"},
       .send = ack([](Ack& r, const State&) { r.clear_actor(); }),
       .prepare = AlertsForSetup},
      {.name = "AckAlertAgentWithoutId",
       .code = kInvalid,
       .message_names = {"actor.id"},
       .send = ack([](Ack& r, const State&) { r.mutable_actor()->clear_id(); }),
       .prepare = AlertsForSetup},
      // The id names the customer whose bucket holds the alert: "<kind>:<customer>:...".
      {.name = "AckAlertIdWithoutCustomer",
       .code = kInvalid,
       .message_names = {"alert_id"},
       .send = ack([](Ack& r, const State&) { r.set_alert_id("negative_streak"); }),
       .prepare = AlertsForSetup},
      {.name = "AckAlertIdEmptyCustomer",
       .code = kInvalid,
       .message_names = {"alert_id"},
       .send = ack([](Ack& r, const State&) { r.set_alert_id("negative_streak::1-0"); }),
       .prepare = AlertsForSetup},
      {.name = "AckAlertIdCustomerOutsideItsCharacters",
       .code = kInvalid,
       .message_names = {"alert_id"},
       .send = ack([](Ack& r, const State&) { r.set_alert_id("negative_streak:c{x}:1-0"); }),
       .prepare = AlertsForSetup},
      {.name = "AckAlertUnknownId",
       .code = kNotFound,
       .message_names = {"alert_id", kUnknownAlert},
       .send = ack([](Ack& r, const State&) { r.set_alert_id(kUnknownAlert); }),
       .prepare = AlertsForSetup},
      {.name = "AckAlertIdOfAnotherTenant",
       .code = kNotFound,
       .message_names = {"alert_id"},
       .send = ack([](Ack& r, const State& s) { r.set_tenant(absl::StrCat(s.tenant, "x")); }),
       .prepare = AlertsForSetup},
      {.name = "WatchAlertsTenantEmpty",
       .code = kInvalid,
       .message_names = {"tenant:"},
       .send = watch([](Watch& r, Api&, const State&) { r.clear_tenant(); }),
       .prepare = AlertsForSetup},
      {.name = "WatchAlertsCursorMalformed",
       .code = kInvalid,
       .message_names = {"after_cursor"},
       .send = watch([](Watch& r, Api&, const State&) { r.set_after_cursor("no cursor!"); }),
       .prepare = AlertsForSetup},
      {.name = "WatchAlertsCursorIsTimelineCursor",
       .code = kInvalid,
       .message_names = {"after_cursor"},
       .send = watch([](Watch& r, Api&, const State& s) { r.set_after_cursor(s.cursor); }),
       .prepare = AlertsForSetup},
      {.name = "WatchAlertsCursorOfAnotherTenant",
       .code = kInvalid,
       .message_names = {"after_cursor"},
       .send = watch([](Watch& r, Api& api, const State& s) {
         r.set_after_cursor(NewestAlert(api, s).cursor());
         r.set_tenant(absl::StrCat(s.tenant, "x"));
       }),
       .prepare = AlertsForSetup},
  };
}

}  // namespace onestory::testing::bad_input
