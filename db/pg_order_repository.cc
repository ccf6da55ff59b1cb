#include "db/pg_order_repository.h"

#include <pqxx/pqxx>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "db/row_time.h"
#include "db/transaction.h"
#include "services/common/errors.h"

namespace order_platform::db {
namespace {

using orders::Order;
using orders::OrderItem;
using orders::OrderStatus;

// One column list for every read of an order with its items (one row per item, order columns
// repeated); OrdersFromRows maps it.
#define OP_ORDER_COLUMNS                                                                       \
  "o.id::text, o.customer_id, o.status, o.status_reason, o.currency, o.total_minor, "          \
  "o.version, o.workflow_id, o.payment_token, o.request_id, o.request_fingerprint, "           \
  "coalesce(o.cancel_request_id, ''), " OP_EPOCH_US("o.created_at") ", " OP_EPOCH_US(          \
      "o.updated_at") ", i.line_no, i.sku, i.quantity, i.unit_price_minor"

// The order and its items in one statement; the `_with_workflow` variant also starts the order's
// workflow (and announces it) in the same statement, so they commit together or not at all.
#define OP_INSERT_ORDER_CTES                                                                    \
  "WITH o AS ("                                                                                 \
  "  INSERT INTO orders.orders (id, customer_id, status, status_reason, currency, total_minor," \
  "    workflow_id, payment_token, request_id, request_fingerprint)"                            \
  "  VALUES ($1::uuid, $2, $3, '', $4, $5, $6, $7, $8, $9)"                                      \
  "  ON CONFLICT (request_id) DO NOTHING"                                                       \
  "  RETURNING id, created_at, updated_at"                                                      \
  "), i AS ("                                                                                   \
  "  INSERT INTO orders.order_items (order_id, line_no, sku, quantity, unit_price_minor)"       \
  "  SELECT o.id, t.n, t.sku, t.quantity, t.price FROM o,"                                      \
  "    unnest($10::text[], $11::int[], $12::bigint[]) WITH ORDINALITY AS t(sku, quantity, price, n)" \
  ")"

constexpr Statement kInsertOrder{
    "orders.insert",
    OP_INSERT_ORDER_CTES
    " SELECT " OP_EPOCH_US("created_at") ", " OP_EPOCH_US("updated_at") " FROM o"};

// No NOTIFY here: a notifying transaction holds PostgreSQL's database-wide notify lock until its
// commit is flushed, which would serialise every CreateOrder. The launcher's `started` callback
// wakes the local coordinator after the commit; other coordinators find the row by polling.
constexpr Statement kInsertOrderWithWorkflow{
    "orders.insert_with_workflow",
    OP_INSERT_ORDER_CTES
    ", w AS ("
    "  INSERT INTO saga.workflows (id, type, business_key, input, status, owner, lease_epoch,"
    "    lease_expires_at)"
    "  SELECT $13, $14, o.id::text, decode($15, 'hex'), 'running', " OP_START_LEASE("$16", "$17")
    "  FROM o RETURNING id)"
    " SELECT " OP_EPOCH_US("created_at") ", " OP_EPOCH_US("updated_at") ","
    " (SELECT count(*) FROM w) FROM o"};

constexpr Statement kSelectOrderByRequestId{
    "orders.select_by_request_id",
    "SELECT " OP_ORDER_COLUMNS " FROM orders.orders o"
    " LEFT JOIN orders.order_items i ON i.order_id = o.id"
    " WHERE o.request_id = $1 ORDER BY i.line_no"};

constexpr Statement kSelectOrder{
    "orders.select",
    "SELECT " OP_ORDER_COLUMNS " FROM orders.orders o"
    " LEFT JOIN orders.order_items i ON i.order_id = o.id"
    " WHERE o.id = $1::uuid ORDER BY i.line_no"};

constexpr Statement kSelectOrderForUpdate{
    "orders.select_for_update",
    "SELECT " OP_ORDER_COLUMNS " FROM orders.orders o"
    " LEFT JOIN orders.order_items i ON i.order_id = o.id"
    " WHERE o.id = $1::uuid ORDER BY i.line_no FOR UPDATE OF o"};

constexpr Statement kSelectOrdersByIds{
    "orders.select_many",
    "SELECT " OP_ORDER_COLUMNS " FROM orders.orders o"
    " LEFT JOIN orders.order_items i ON i.order_id = o.id"
    " WHERE o.id = ANY($1::uuid[]) ORDER BY o.id, i.line_no"};

constexpr Statement kUpdateOrder{
    "orders.update",
    "UPDATE orders.orders SET status = $2, status_reason = $3, cancel_request_id = nullif($4, ''),"
    " version = version + 1, updated_at = now()"
    " WHERE id = $1::uuid RETURNING version, " OP_EPOCH_US("updated_at")};

// Moves order $1 to status $2 with reason $3 if its status is one of $4 (text[]); no row otherwise.
constexpr Statement kTransitionOrder{
    "orders.transition",
    "UPDATE orders.orders SET status = $2, status_reason = $3, version = version + 1,"
    " updated_at = now() WHERE id = $1::uuid AND status = ANY($4::text[]) RETURNING version"};

// Keyset pages, newest first; one statement per filter so each uses its own index. $1/$2 is the
// cursor (exclusive), $3 the limit, then the filters.
#define OP_LIST_ORDERS(where)                                                               \
  "WITH page AS (SELECT * FROM orders.orders o WHERE (o.created_at, o.id) < "               \
  "('epoch'::timestamptz + $1::bigint * interval '1 microsecond', $2::uuid) " where                                 \
  " ORDER BY o.created_at DESC, o.id DESC LIMIT $3) "                                       \
  "SELECT " OP_ORDER_COLUMNS " FROM page o LEFT JOIN orders.order_items i ON i.order_id = o.id" \
  " ORDER BY o.created_at DESC, o.id DESC, i.line_no"

constexpr Statement kListOrders{"orders.list", OP_LIST_ORDERS("")};
constexpr Statement kListOrdersByCustomer{"orders.list_by_customer",
                                          OP_LIST_ORDERS("AND o.customer_id = $4")};
constexpr Statement kListOrdersByStatus{"orders.list_by_status",
                                        OP_LIST_ORDERS("AND o.status = $4")};
constexpr Statement kListOrdersByCustomerAndStatus{
    "orders.list_by_customer_status", OP_LIST_ORDERS("AND o.customer_id = $4 AND o.status = $5")};

// A cursor above every real row (9999-12-31), for the first page.
constexpr int64_t kEndOfTimeMicros = 253402300799000000;

// Maps rows of OP_ORDER_COLUMNS (consecutive rows per order) to orders.
std::vector<Order> OrdersFromRows(const pqxx::result& rows) {
  std::vector<Order> out;
  for (const pqxx::row& row : rows) {
    const std::string id = row[0].as<std::string>();
    if (out.empty() || out.back().id != id) {
      Order o;
      o.id = id;
      o.customer_id = row[1].as<std::string>();
      o.status = orders::ParseOrderStatus(row[2].as<std::string>()).value_or(OrderStatus::kPending);
      o.status_reason = row[3].as<std::string>();
      o.total = Money{row[4].as<std::string>(), row[5].as<int64_t>()};
      o.version = row[6].as<int64_t>();
      o.workflow_id = row[7].as<std::string>();
      o.payment_token = row[8].as<std::string>();
      o.request_id = row[9].as<std::string>();
      o.request_fingerprint = static_cast<uint64_t>(row[10].as<int64_t>());
      o.cancel_request_id = row[11].as<std::string>();
      o.create_time = TimeFromField(row[12]);
      o.update_time = TimeFromField(row[13]);
      out.push_back(std::move(o));
    }
    if (!row[14].is_null()) {
      out.back().items.push_back(OrderItem{row[15].as<std::string>(), row[16].as<int32_t>(),
                                           Money{out.back().total.currency, row[17].as<int64_t>()}});
    }
  }
  return out;
}

absl::StatusOr<Order> SingleOrder(const pqxx::result& rows, absl::string_view id) {
  std::vector<Order> found = OrdersFromRows(rows);
  if (found.empty()) return NotFound("order", id);
  return std::move(found.front());
}

}  // namespace

absl::StatusOr<orders::CreateOrderResult> PgOrderRepository::Create(const Order& order) {
  std::vector<std::string> skus;
  std::vector<int32_t> quantities;
  std::vector<int64_t> prices;
  for (const OrderItem& item : order.items) {
    skus.push_back(item.sku);
    quantities.push_back(item.quantity);
    prices.push_back(item.unit_price.minor);
  }
  const std::string sku_array = TextArray(skus);
  const std::string quantity_array = IntArray(quantities);
  const std::string price_array = IntArray(prices);
  const WorkflowStart launch = launch_ ? launch_(order) : WorkflowStart{};
  orders::CreateOrderResult result;
  // One statement (autocommit, one round trip). Keyed by request_id, so re-running it after a
  // lost connection is harmless: the replay finds the first order.
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        pqxx::result inserted =
            launch_ ? Exec(tx, kInsertOrderWithWorkflow, order.id, order.customer_id,
                           OrderStatusName(order.status), order.total.currency, order.total.minor,
                           order.workflow_id, order.payment_token, order.request_id,
                           static_cast<int64_t>(order.request_fingerprint), sku_array,
                           quantity_array, price_array, launch.id, launch.type,
                           absl::BytesToHexString(launch.input), launch.owner,
                           absl::ToInt64Milliseconds(launch.lease))
                    : Exec(tx, kInsertOrder, order.id, order.customer_id,
                           OrderStatusName(order.status), order.total.currency, order.total.minor,
                           order.workflow_id, order.payment_token, order.request_id,
                           static_cast<int64_t>(order.request_fingerprint), sku_array,
                           quantity_array, price_array);
        if (!inserted.empty()) {
          result.order = order;
          result.order.version = 1;
          result.order.create_time = TimeFromField(inserted[0][0]);
          result.order.update_time = TimeFromField(inserted[0][1]);
          result.created = true;
          return absl::OkStatus();
        }
        OP_ASSIGN_OR_RETURN(result.order,
                            SingleOrder(Exec(tx, kSelectOrderByRequestId, order.request_id),
                                        order.request_id));
        result.created = false;
        return absl::OkStatus();
      }));
  if (result.created && started_) started_(launch);
  return result;
}

absl::StatusOr<Order> PgOrderRepository::Get(absl::string_view order_id) {
  absl::StatusOr<Order> result;
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
                                    [&](pqxx::transaction_base& tx) -> absl::Status {
                                      result = SingleOrder(
                                          Exec(tx, kSelectOrder, std::string(order_id)), order_id);
                                      return absl::OkStatus();
                                    }));
  return result;
}

absl::StatusOr<std::vector<Order>> PgOrderRepository::BatchGet(
    absl::Span<const std::string> order_ids) {
  std::vector<Order> result;
  const std::string ids = TextArray({order_ids.begin(), order_ids.end()});
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
                                    [&](pqxx::transaction_base& tx) -> absl::Status {
                                      result = OrdersFromRows(Exec(tx, kSelectOrdersByIds, ids));
                                      return absl::OkStatus();
                                    }));
  return result;
}

absl::StatusOr<orders::OrderPage> PgOrderRepository::List(const orders::OrderListQuery& query) {
  // No cursor: start above every real row.
  const int64_t cursor_us =
      query.after ? absl::ToUnixMicros(query.after->time) : kEndOfTimeMicros;
  const std::string cursor_id =
      query.after ? query.after->id : "ffffffff-ffff-ffff-ffff-ffffffffffff";
  // Fetch one extra row to learn whether another page follows.
  const int64_t limit = int64_t{query.page_size} + 1;
  std::vector<Order> rows;
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        pqxx::result r;
        if (query.customer_id && query.status) {
          r = Exec(tx, kListOrdersByCustomerAndStatus, cursor_us, cursor_id, limit,
                   *query.customer_id, OrderStatusName(*query.status));
        } else if (query.customer_id) {
          r = Exec(tx, kListOrdersByCustomer, cursor_us, cursor_id, limit, *query.customer_id);
        } else if (query.status) {
          r = Exec(tx, kListOrdersByStatus, cursor_us, cursor_id, limit,
                   OrderStatusName(*query.status));
        } else {
          r = Exec(tx, kListOrders, cursor_us, cursor_id, limit);
        }
        rows = OrdersFromRows(r);
        return absl::OkStatus();
      }));
  orders::OrderPage page;
  if (rows.size() > static_cast<size_t>(query.page_size)) {
    rows.resize(query.page_size);
    page.next = PageCursor{rows.back().create_time, rows.back().id};
  }
  page.orders = std::move(rows);
  return page;
}

absl::StatusOr<Order> PgOrderRepository::UpdateInTransaction(
    pqxx::transaction_base& tx, absl::string_view order_id,
    absl::FunctionRef<absl::Status(Order&)> mutate) {
  OP_ASSIGN_OR_RETURN(Order order, SingleOrder(Exec(tx, kSelectOrderForUpdate,
                                                    std::string(order_id)),
                                               order_id));
  const Order before = order;
  OP_RETURN_IF_ERROR(mutate(order));
  pqxx::row r = Exec(tx, kUpdateOrder, before.id, OrderStatusName(order.status),
                     order.status_reason, order.cancel_request_id)[0];
  Order saved = std::move(order);
  saved.id = before.id;
  saved.items = before.items;
  saved.create_time = before.create_time;
  saved.version = r[0].as<int64_t>();
  saved.update_time = TimeFromField(r[1]);
  return saved;
}

absl::Status PgOrderRepository::TransitionInTransaction(pqxx::transaction_base& tx,
                                                       absl::string_view order_id,
                                                       orders::OrderStatus to,
                                                       const std::string& reason) {
  std::vector<std::string> from;
  for (orders::OrderStatus status : orders::StatusesThatCanBecome(to)) {
    from.push_back(OrderStatusName(status));
  }
  if (!Exec(tx, kTransitionOrder, std::string(order_id), std::string(OrderStatusName(to)), reason,
            TextArray(from))
           .empty()) {
    return absl::OkStatus();
  }
  return UpdateInTransaction(tx, order_id, [&](Order& order) {
           return order.TransitionTo(to, reason);
         })
      .status();
}

absl::StatusOr<Order> PgOrderRepository::Update(
    absl::string_view order_id, absl::FunctionRef<absl::Status(Order&)> mutate) {
  Order saved;
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {}, [&](pqxx::transaction_base& tx) -> absl::Status {
    OP_ASSIGN_OR_RETURN(saved, UpdateInTransaction(tx, order_id, mutate));
    return absl::OkStatus();
  }));
  return saved;
}

}  // namespace order_platform::db
