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

// Orders with their items (and, with the `workflows` CTE, each order's workflow) in one
// statement, for several orders: they commit together or not at all. Per order (ordinal n, from
// 1): $1 id, $2 customer, $3 status, $4 currency, $5 total, $6 workflow id, $7 payment token, $8
// request id, $9 fingerprint, and the workflow to start: $10 its id, $11 type, $12 input (hex),
// $13 owner, $14 lease (OP_START_LEASE) and $19 deadline from now in ms (negative: none); per
// item, in line order: $15 its order's ordinal, $16 SKU, $17 quantity, $18 unit price. An order
// whose request id is taken already inserts nothing (ON CONFLICT, which waits for a concurrent
// insert of it to commit or roll back). Orders are inserted in request id order, so two statements
// inserting the same request ids never wait on each other's inserts. Returns the ordinals inserted,
// with the order's times. No NOTIFY: a notifying transaction holds PostgreSQL's database-wide
// notify lock until its commit is flushed, which would serialise every CreateOrder. The launcher's
// `started` callback wakes the local coordinator after the commit; other coordinators find the row
// by polling.
#define OP_INSERT_ORDERS(workflows)                                                              \
  "WITH req AS MATERIALIZED ("                                                                   \
  "  SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::bigint[],"         \
  "    $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[], $11::text[], $12::text[]," \
  "    $13::text[], $14::bigint[], $19::bigint[]) WITH ORDINALITY AS r(id, customer_id, status," \
  "    currency, total_minor, workflow_id, payment_token, request_id, request_fingerprint,"      \
  "    start_id, start_type, start_input, start_owner, start_lease_ms, start_timeout_ms, n)"     \
  "), item AS MATERIALIZED ("                                                                    \
  "  SELECT * FROM unnest($15::bigint[], $16::text[], $17::int[], $18::bigint[])"                \
  "    WITH ORDINALITY AS t(n, sku, quantity, price, k)"                                         \
  "), o AS ("                                                                                    \
  "  INSERT INTO orders.orders (id, customer_id, status, status_reason, currency, total_minor,"  \
  "    workflow_id, payment_token, request_id, request_fingerprint)"                             \
  "  SELECT r.id, r.customer_id, r.status, '', r.currency, r.total_minor, r.workflow_id,"        \
  "    r.payment_token, r.request_id, r.request_fingerprint FROM req r ORDER BY r.request_id"    \
  "  ON CONFLICT (request_id) DO NOTHING"                                                        \
  "  RETURNING id, created_at, updated_at"                                                       \
  "), won AS MATERIALIZED ("                                                                     \
  "  SELECT r.n, o.id, o.created_at, o.updated_at FROM o JOIN req r ON r.id = o.id"              \
  "), i AS ("                                                                                    \
  "  INSERT INTO orders.order_items (order_id, line_no, sku, quantity, unit_price_minor)"        \
  "  SELECT w.id, row_number() OVER (PARTITION BY i.n ORDER BY i.k), i.sku, i.quantity,"         \
  "    i.price"                                                                                  \
  "  FROM won w JOIN item i ON i.n = w.n"                                                        \
  ")" workflows                                                                                  \
  " SELECT w.n, " OP_EPOCH_US("w.created_at") ", " OP_EPOCH_US("w.updated_at") " FROM won w"

// For orders without a workflow (no launcher set): the start arrays are ignored.
constexpr Statement kInsertOrders{"orders.insert", OP_INSERT_ORDERS("")};

constexpr Statement kInsertOrdersWithWorkflows{
    "orders.insert_with_workflows",
    OP_INSERT_ORDERS(
        ", w AS ("
        "  INSERT INTO saga.workflows (id, type, business_key, input, status,"
        "    deadline_at, owner, lease_epoch, lease_expires_at)"
        "  SELECT r.start_id, r.start_type, w.id::text, decode(r.start_input, 'hex'),"
        "    'running', CASE WHEN r.start_timeout_ms < 0 THEN NULL"
        "      ELSE now() + r.start_timeout_ms * interval '1 millisecond' END, " OP_START_LEASE(
            "r.start_owner", "r.start_lease_ms") "  FROM won w JOIN req r ON r.n = w.n"
                                                 ")")};

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

// One order's Create inside a kInsertOrders statement.
struct CreateWrite {
  const Order* order = nullptr;
  const WorkflowStart* start = nullptr;  // nullptr: no workflow.
  absl::Status status;                   // The statement's.
  bool inserted = false;                 // By the statement: the order's times follow.
  absl::Time create_time;
  absl::Time update_time;
};

namespace {

// kInsertOrdersWithWorkflows (kInsertOrders when the writes start no workflow) for `writes`
// (distinct ids and request ids, all with a workflow or all without). Sets `inserted` and the
// times of those it inserted.
void ExecInsertOrders(pqxx::transaction_base& tx, const std::vector<CreateWrite*>& writes) {
  std::vector<std::string> ids, customers, statuses, currencies, workflow_ids, tokens, request_ids,
      start_ids, start_types, start_inputs, start_owners, skus;
  std::vector<int64_t> totals, fingerprints, lease_ms, timeout_ms, item_ordinals, prices;
  std::vector<int32_t> quantities;
  for (size_t i = 0; i < writes.size(); ++i) {
    const Order& order = *writes[i]->order;
    ids.push_back(order.id);
    customers.push_back(order.customer_id);
    statuses.push_back(OrderStatusName(order.status));
    currencies.push_back(order.total.currency);
    totals.push_back(order.total.minor);
    workflow_ids.push_back(order.workflow_id);
    tokens.push_back(order.payment_token);
    request_ids.push_back(order.request_id);
    fingerprints.push_back(static_cast<int64_t>(order.request_fingerprint));
    const WorkflowStart* start = writes[i]->start;
    start_ids.push_back(start ? start->id : "");
    start_types.push_back(start ? start->type : "");
    start_inputs.push_back(start ? absl::BytesToHexString(start->input) : "");
    start_owners.push_back(start ? start->owner : "");
    lease_ms.push_back(start ? absl::ToInt64Milliseconds(start->lease) : 0);
    timeout_ms.push_back(start && start->timeout != absl::InfiniteDuration()
                             ? absl::ToInt64Milliseconds(start->timeout)
                             : -1);
    for (const OrderItem& item : order.items) {
      item_ordinals.push_back(static_cast<int64_t>(i) + 1);
      skus.push_back(item.sku);
      quantities.push_back(item.quantity);
      prices.push_back(item.unit_price.minor);
    }
  }
  for (CreateWrite* write : writes) write->inserted = false;
  const pqxx::result rows = Exec(
      tx, writes.front()->start ? kInsertOrdersWithWorkflows : kInsertOrders, TextArray(ids),
      TextArray(customers), TextArray(statuses), TextArray(currencies), IntArray(totals),
      TextArray(workflow_ids), TextArray(tokens), TextArray(request_ids), IntArray(fingerprints),
      TextArray(start_ids), TextArray(start_types), TextArray(start_inputs),
      TextArray(start_owners), IntArray(lease_ms), IntArray(item_ordinals), TextArray(skus),
      IntArray(quantities), IntArray(prices), IntArray(timeout_ms));
  for (const pqxx::row& row : rows) {
    CreateWrite& write = *writes.at(row[0].as<int64_t>() - 1);
    write.inserted = true;
    write.create_time = TimeFromField(row[1]);
    write.update_time = TimeFromField(row[2]);
  }
}

bool SameOrderOrRequest(const CreateWrite& a, const CreateWrite& b) {
  return a.order->id == b.order->id || a.order->request_id == b.order->request_id;
}

}  // namespace

PgOrderRepository::PgOrderRepository(ConnectionPool* pool, WriteBatchOptions options)
    : pool_(*pool),
      batch_pool_(BatchPoolOptions(pool->options(), options, 1, "_order_batches")),
      creates_(
          options.max_batch, [this](const std::vector<CreateWrite*>& batch) { SendCreates(batch); },
          SameOrderOrRequest) {}

PgOrderRepository::~PgOrderRepository() = default;

void PgOrderRepository::SendCreates(const std::vector<CreateWrite*>& batch) {
  // Keyed by request id: re-running it after a lost connection inserts nothing for the orders
  // it inserted, and they are then answered alone (finding their order).
  const absl::Status status = RunSharedStatement(
      batch_pool_, batch, [&](pqxx::transaction_base& tx) { ExecInsertOrders(tx, batch); });
  if (!status.ok()) {
    for (CreateWrite* write : batch) write->inserted = false;
  }
}

absl::StatusOr<orders::CreateOrderResult> PgOrderRepository::Create(const Order& order) {
  const WorkflowStart launch = launch_ ? launch_(order) : WorkflowStart{};
  orders::CreateOrderResult result;
  auto created = [&](absl::Time create_time, absl::Time update_time) {
    result.order = order;
    result.order.version = 1;
    result.order.create_time = create_time;
    result.order.update_time = update_time;
    result.created = true;
  };
  // The common case: one statement, shared with the other orders created at the same time.
  CreateWrite write{.order = &order, .start = launch_ ? &launch : nullptr};
  creates_.Submit(write);
  if (write.inserted) {
    created(write.create_time, write.update_time);
  } else {
    // Not inserted by that statement: a replay (its request id is taken), or a statement that
    // failed. Answered alone: inserted now, or the order that holds the request id. One
    // statement, then a read; keyed by request id, so re-running it is harmless.
    OP_RETURN_IF_ERROR(RunTransaction(
        pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
        [&](pqxx::transaction_base& tx) -> absl::Status {
          ExecInsertOrders(tx, {&write});
          if (write.inserted) {
            created(write.create_time, write.update_time);
            return absl::OkStatus();
          }
          OP_ASSIGN_OR_RETURN(
              result.order,
              SingleOrder(Exec(tx, kSelectOrderByRequestId, order.request_id), order.request_id));
          // Its own id: this call inserted it, in a shared statement whose answer was lost with
          // its connection (the re-run then found it); its workflow must still be handed over.
          result.created = result.order.id == order.id;
          return absl::OkStatus();
        }));
  }
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
