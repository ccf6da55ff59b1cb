#include "db/pg_inventory_repository.h"

#include <algorithm>
#include <pqxx/pqxx>

#include "absl/strings/str_cat.h"
#include "db/row_time.h"
#include "db/transaction.h"
#include "services/common/errors.h"

namespace order_platform::db {
namespace {

using inventory::Product;
using inventory::Reservation;
using inventory::ReservationItem;
using inventory::ReservationStatus;

// ---- products -------------------------------------------------------------------------------

// One column list for every read of a product; ProductFromRow maps it.
#define OP_PRODUCT_COLUMNS                                                                        \
  "p.sku, p.name, p.currency, p.unit_price_minor, p.on_hand, p.reserved, p.version, "             \
  "p.last_request_id, p.last_request_fingerprint, " OP_EPOCH_US("p.created_at") ", " OP_EPOCH_US( \
      "p.updated_at")

constexpr Statement kSelectProduct{"inventory.select_product",
                                   "SELECT " OP_PRODUCT_COLUMNS
                                   " FROM inventory.products p WHERE p.sku = $1"};

constexpr Statement kSelectProductForUpdate{
    "inventory.select_product_for_update",
    "SELECT " OP_PRODUCT_COLUMNS " FROM inventory.products p WHERE p.sku = $1 FOR UPDATE"};

// Locks the products of a reservation in sku order, the one lock order every stock change uses,
// so concurrent reservations, releases and commits never deadlock. $1: text[] of SKUs.
constexpr Statement kLockProducts{"inventory.lock_products",
                                  "SELECT " OP_PRODUCT_COLUMNS
                                  " FROM inventory.products p"
                                  " WHERE p.sku = ANY($1::text[]) ORDER BY p.sku FOR UPDATE"};

constexpr Statement kInsertProduct{
    "inventory.insert_product",
    "INSERT INTO inventory.products AS p (sku, name, currency, unit_price_minor, on_hand,"
    "  last_request_id, last_request_fingerprint)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7)"
    " ON CONFLICT (sku) DO NOTHING"
    " RETURNING " OP_PRODUCT_COLUMNS};

constexpr Statement kReplaceProduct{
    "inventory.replace_product",
    "UPDATE inventory.products p SET name = $2, currency = $3, unit_price_minor = $4,"
    " on_hand = $5, last_request_id = $6, last_request_fingerprint = $7,"
    " version = p.version + 1, updated_at = now()"
    " WHERE p.sku = $1 RETURNING " OP_PRODUCT_COLUMNS};

// Records UpsertProduct request $1 for sku $2 with fingerprint $3; no row when the request id is
// already recorded (waiting for a concurrent, uncommitted record of it to commit or roll back).
// The sku is checked against inventory.products at commit (deferred), after the product write.
constexpr Statement kRecordUpsert{
    "inventory.record_upsert",
    "INSERT INTO inventory.product_upserts (request_id, sku, request_fingerprint)"
    " VALUES ($1, $2, $3)"
    " ON CONFLICT (request_id) DO NOTHING RETURNING request_id"};

// The product of the upsert recorded as request $1, as it is now, followed by the recorded
// fingerprint.
constexpr Statement kSelectRecordedUpsert{
    "inventory.select_recorded_upsert",
    "SELECT " OP_PRODUCT_COLUMNS ", u.request_fingerprint"
    " FROM inventory.product_upserts u JOIN inventory.products p ON p.sku = u.sku"
    " WHERE u.request_id = $1"};

// Keyset page by sku (the column's "C" collation makes it byte order). $1: exclusive cursor.
constexpr Statement kListProducts{"inventory.list_products",
                                  "SELECT " OP_PRODUCT_COLUMNS
                                  " FROM inventory.products p"
                                  " WHERE p.sku > $1 ORDER BY p.sku LIMIT $2"};

Product ProductFromRow(const pqxx::row& row) {
  Product p;
  p.sku = row[0].as<std::string>();
  p.name = row[1].as<std::string>();
  p.unit_price = Money{row[2].as<std::string>(), row[3].as<int64_t>()};
  p.on_hand = row[4].as<int64_t>();
  p.reserved = row[5].as<int64_t>();
  p.version = row[6].as<int64_t>();
  p.last_request_id = row[7].as<std::string>();
  p.last_request_fingerprint = static_cast<uint64_t>(row[8].as<int64_t>());
  p.create_time = TimeFromField(row[9]);
  p.update_time = TimeFromField(row[10]);
  return p;
}

std::vector<Product> ProductsFromRows(const pqxx::result& rows) {
  std::vector<Product> out;
  out.reserve(rows.size());
  for (const pqxx::row& row : rows) out.push_back(ProductFromRow(row));
  return out;
}

// ---- reservations ---------------------------------------------------------------------------

// One column list for every read of a reservation with its items (one row per item, the
// reservation's columns repeated); ReservationsFromRows maps it.
#define OP_RESERVATION_COLUMNS                                                          \
  "r.order_id, r.status, r.request_id, r.request_fingerprint, r.version, " OP_EPOCH_US( \
      "r.created_at") ", " OP_EPOCH_US("r.updated_at") ", i.line_no, i.sku, i.quantity"

#define OP_RESERVATION_FROM        \
  " FROM inventory.reservations r" \
  " LEFT JOIN inventory.reservation_items i ON i.order_id = r.order_id"

constexpr Statement kSelectReservation{"inventory.select_reservation",
                                       "SELECT " OP_RESERVATION_COLUMNS OP_RESERVATION_FROM
                                       " WHERE r.order_id = $1 ORDER BY i.line_no"};

constexpr Statement kSelectReservationForUpdate{
    "inventory.select_reservation_for_update",
    "SELECT " OP_RESERVATION_COLUMNS OP_RESERVATION_FROM
    " WHERE r.order_id = $1 ORDER BY i.line_no FOR UPDATE OF r"};

// The reservation of order $1 or, failing that, the one created by request $2.
constexpr Statement kSelectReservationOfOrderOrRequest{
    "inventory.select_reservation_of_order_or_request",
    "SELECT " OP_RESERVATION_COLUMNS OP_RESERVATION_FROM
    " WHERE r.order_id = ANY(ARRAY[$1, (SELECT x.order_id FROM inventory.reservations x"
    "                                   WHERE x.request_id = $2)])"
    " ORDER BY r.order_id = $1 DESC, r.order_id, i.line_no"};

// The whole of the Reserves that succeed, for several orders in one statement. Per order
// (ordinal n, from 1): $1 order id, $2 request id, $3 fingerprint; per item, in line order: $4
// its order's ordinal, $5 SKU, $6 quantity. Locks every item's product in sku order (FOR UPDATE,
// the one lock order every stock change uses) and takes the orders that hold no reservation (by
// order or request id) and whose every item is available, counting for each SKU the quantities
// of the orders before it in the statement, as if they all succeed (an order refused only
// because an earlier one in the statement was short anyway is refused here and decided on its
// own after). For those it inserts the reservation and its items (in order id order, so that two
// statements inserting the same orders never wait on each other's inserts) and raises `reserved`
// of each product by their total. Returns the ordinals reserved, with the reservation's times;
// nothing is written for the others. Orders and request ids are distinct within one statement.
constexpr Statement kReserveIfAvailable{
    "inventory.reserve_if_available",
    "WITH req AS MATERIALIZED ("
    "  SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[]) WITH ORDINALITY"
    "    AS r(order_id, request_id, fingerprint, n)"
    "), item AS MATERIALIZED ("
    "  SELECT * FROM unnest($4::bigint[], $5::text[], $6::int[]) WITH ORDINALITY"
    "    AS t(n, sku, quantity, k)"
    "), locked AS MATERIALIZED ("
    "  SELECT p.sku, p.on_hand - p.reserved AS available FROM inventory.products p"
    "  WHERE p.sku = ANY($5::text[]) ORDER BY p.sku FOR UPDATE"
    "), fresh AS MATERIALIZED ("
    "  SELECT r.n FROM req r"
    "  WHERE NOT EXISTS (SELECT 1 FROM inventory.reservations x WHERE x.order_id = r.order_id)"
    "    AND NOT EXISTS (SELECT 1 FROM inventory.reservations x WHERE x.request_id = r.request_id)"
    "), demand AS MATERIALIZED ("
    "  SELECT i.n, l.available,"
    "    sum(i.quantity) OVER (PARTITION BY i.sku ORDER BY i.n, i.k) AS cumulative"
    "  FROM item i JOIN fresh f ON f.n = i.n LEFT JOIN locked l ON l.sku = i.sku"
    "), ok AS MATERIALIZED ("
    "  SELECT d.n FROM demand d GROUP BY d.n"
    "  HAVING bool_and(d.available IS NOT NULL AND d.cumulative <= d.available)"
    "), reservation AS ("
    "  INSERT INTO inventory.reservations (order_id, status, request_id, request_fingerprint)"
    "  SELECT r.order_id, 'held', r.request_id, r.fingerprint FROM req r"
    "  WHERE r.n IN (SELECT n FROM ok) ORDER BY r.order_id"
    "  ON CONFLICT DO NOTHING"
    "  RETURNING order_id, created_at, updated_at"
    "), won AS MATERIALIZED ("
    "  SELECT r.n, r.order_id, x.created_at, x.updated_at"
    "  FROM reservation x JOIN req r ON r.order_id = x.order_id"
    "), items AS ("
    "  INSERT INTO inventory.reservation_items (order_id, line_no, sku, quantity)"
    "  SELECT w.order_id, row_number() OVER (PARTITION BY i.n ORDER BY i.k), i.sku, i.quantity"
    "  FROM won w JOIN item i ON i.n = w.n"
    "), stock AS ("
    "  UPDATE inventory.products p SET reserved = p.reserved + t.quantity,"
    "    version = p.version + 1, updated_at = now()"
    "  FROM (SELECT i.sku, sum(i.quantity) AS quantity FROM won w JOIN item i ON i.n = w.n"
    "        GROUP BY i.sku) t"
    "  WHERE p.sku = ANY($5::text[]) AND p.sku = t.sku"
    ") "
    "SELECT w.n, " OP_EPOCH_US("w.created_at") ", " OP_EPOCH_US("w.updated_at") " FROM won w"};

// Moves the reservations of orders $1 (text[], distinct) from status `from` to `to` and applies
// `stock_set` (a SET list over products `p` and `i`, the reservations' total quantity per SKU)
// to the products, in one statement. Locks first, writes after: the reservation rows in order id
// order (FOR NO KEY UPDATE: a lock, not yet a new row version, so a concurrent duplicate
// Reserve's ON CONFLICT check does not wait on it while it holds product locks we want), then
// their products in sku order (so concurrent changes never deadlock: reservations before
// products, each in key order); then the statuses and the stock. Returns the reservations moved,
// as OP_RESERVATION_COLUMNS after the move; nothing is written for one absent or not in `from`.
// Products are reached through `sku = ANY(ARRAY(...))`, an index condition whatever the plan:
// joined to the items alone, a generic plan whose estimate of items per order is stale
// hash-joins a sequential scan of every product.
#define OP_SETTLE_RESERVATIONS(from, to, stock_set)                                     \
  "WITH held AS MATERIALIZED ("                                                         \
  "  SELECT order_id FROM inventory.reservations"                                       \
  "  WHERE order_id = ANY($1::text[]) AND status = '" from                              \
  "' ORDER BY order_id FOR NO KEY UPDATE"                                               \
  "), items AS MATERIALIZED ("                                                          \
  "  SELECT sku, sum(quantity) AS quantity FROM inventory.reservation_items"            \
  "  WHERE order_id = ANY(ARRAY(SELECT order_id FROM held)) GROUP BY sku"               \
  "), locked AS MATERIALIZED ("                                                         \
  "  SELECT p.sku FROM inventory.products p"                                            \
  "  WHERE p.sku = ANY(ARRAY(SELECT sku FROM items)) ORDER BY p.sku FOR UPDATE"         \
  "), r AS ("                                                                           \
  "  UPDATE inventory.reservations SET status = '" to                                   \
  "', version = version + 1,"                                                           \
  "    updated_at = now()"                                                              \
  "  WHERE order_id = ANY(ARRAY(SELECT order_id FROM held))"                            \
  "    AND (SELECT count(*) FROM locked) >= 0"                                          \
  "  RETURNING order_id, status, request_id, request_fingerprint, version, created_at," \
  "    updated_at"                                                                      \
  "), stock AS ("                                                                       \
  "  UPDATE inventory.products p SET " stock_set                                        \
  ", version = p.version + 1, updated_at = now()"                                       \
  "  FROM items i"                                                                      \
  "  WHERE p.sku = ANY(ARRAY(SELECT sku FROM items)) AND p.sku = i.sku"                 \
  "    AND EXISTS (SELECT 1 FROM r)"                                                    \
  ") "                                                                                  \
  "SELECT " OP_RESERVATION_COLUMNS                                                      \
  " FROM r"                                                                             \
  " LEFT JOIN inventory.reservation_items i ON i.order_id = r.order_id"                 \
  " ORDER BY r.order_id, i.line_no"

// Held -> released: each item's quantity goes back from reserved.
constexpr Statement kReleaseReservations{
    "inventory.release_reservations",
    OP_SETTLE_RESERVATIONS("held", "released", "reserved = p.reserved - i.quantity")};

// Held -> committed: each item's quantity leaves both on_hand and reserved.
constexpr Statement kCommitReservations{
    "inventory.commit_reservations",
    OP_SETTLE_RESERVATIONS("held", "committed",
                           "reserved = p.reserved - i.quantity, on_hand = p.on_hand - i.quantity")};

// Committed -> returned: each item's quantity goes back onto on_hand (reserved is untouched).
constexpr Statement kReturnReservations{
    "inventory.return_reservations",
    OP_SETTLE_RESERVATIONS("committed", "returned", "on_hand = p.on_hand + i.quantity")};

// Maps rows of OP_RESERVATION_COLUMNS (consecutive rows per reservation) to reservations.
std::vector<Reservation> ReservationsFromRows(const pqxx::result& rows) {
  std::vector<Reservation> out;
  for (const pqxx::row& row : rows) {
    const std::string order_id = row[0].as<std::string>();
    if (out.empty() || out.back().order_id != order_id) {
      Reservation r;
      r.order_id = order_id;
      r.status = inventory::ParseReservationStatus(row[1].as<std::string>())
                     .value_or(ReservationStatus::kHeld);
      r.request_id = row[2].as<std::string>();
      r.request_fingerprint = static_cast<uint64_t>(row[3].as<int64_t>());
      r.version = row[4].as<int64_t>();
      r.create_time = TimeFromField(row[5]);
      r.update_time = TimeFromField(row[6]);
      out.push_back(std::move(r));
    }
    if (!row[7].is_null()) {
      out.back().items.push_back(ReservationItem{row[8].as<std::string>(), row[9].as<int32_t>()});
    }
  }
  return out;
}

absl::StatusOr<Reservation> SingleReservation(const pqxx::result& rows,
                                              absl::string_view order_id) {
  std::vector<Reservation> found = ReservationsFromRows(rows);
  if (found.empty()) return NotFound("reservation for order", order_id);
  return std::move(found.front());
}

// kReserveIfAvailable's item arguments ($4..$6): per item, in line order, its order's ordinal in
// the statement, its SKU and its quantity.
struct ItemArrays {
  std::vector<int64_t> ordinals;
  std::vector<std::string> skus;
  std::vector<int32_t> quantities;

  void Add(int64_t ordinal, const std::vector<ReservationItem>& items) {
    for (const ReservationItem& item : items) {
      ordinals.push_back(ordinal);
      skus.push_back(item.sku);
      quantities.push_back(item.quantity);
    }
  }
};

}  // namespace

// One order's Reserve inside a kReserveIfAvailable statement.
struct ReserveWrite {
  const Reservation* reservation = nullptr;
  absl::Status status;    // The statement's.
  bool reserved = false;  // By the statement: the reservation's times follow.
  absl::Time create_time;
  absl::Time update_time;
};

// One order's Release, Commit or Return inside an OP_SETTLE_RESERVATIONS statement.
struct SettleWrite {
  std::string order_id;
  absl::Status status;               // The statement's.
  std::optional<Reservation> moved;  // By the statement.
};

namespace {

bool SameOrderOrRequest(const ReserveWrite& a, const ReserveWrite& b) {
  return a.reservation->order_id == b.reservation->order_id ||
         a.reservation->request_id == b.reservation->request_id;
}

bool SameOrder(const SettleWrite& a, const SettleWrite& b) { return a.order_id == b.order_id; }

}  // namespace

// ---- products -------------------------------------------------------------------------------

absl::StatusOr<inventory::UpsertProductResult> PgInventoryRepository::UpsertProduct(
    const Product& product, int64_t expected_version) {
  inventory::UpsertProductResult result;
  const std::string& request_id = product.last_request_id;
  const auto fingerprint = static_cast<int64_t>(product.last_request_fingerprint);
  // Keyed by the request id, a re-run after a lost COMMIT finds its own record and is a no-op.
  const TxOptions options{.mode = TxMode::kReadCommitted, .idempotent = !request_id.empty()};
  OP_RETURN_IF_ERROR(
      RunTransaction(pool_, options, [&](pqxx::transaction_base& tx) -> absl::Status {
        // The request id first: recorded already (by this or another SKU's upsert, however long
        // ago) means a replay that writes nothing. A concurrent upsert with the same id holds
        // the key until it commits (then this one replays it) or rolls back (then this one
        // records it). A failure below rolls the record back with the write.
        if (!request_id.empty() &&
            Exec(tx, kRecordUpsert, request_id, product.sku, fingerprint).empty()) {
          pqxx::result recorded = Exec(tx, kSelectRecordedUpsert, request_id);
          if (recorded.empty()) {  // Not expected: records are never deleted.
            return absl::AbortedError(
                absl::StrCat("upsert request ", request_id, " could not be read; try again"));
          }
          result = {ProductFromRow(recorded[0]), false,
                    static_cast<uint64_t>(recorded[0][11].as<int64_t>())};
          return absl::OkStatus();
        }
        // Twice at most: a product created by someone else between our look and our insert is
        // then found, locked and replaced.
        for (int attempt = 0; attempt < 2; ++attempt) {
          pqxx::result found = Exec(tx, kSelectProductForUpdate, product.sku);
          if (found.empty()) {
            if (expected_version != 0) {
              return inventory::ProductVersionMismatch(product.sku, 0, expected_version);
            }
            pqxx::result inserted =
                Exec(tx, kInsertProduct, product.sku, product.name, product.unit_price.currency,
                     product.unit_price.minor, product.on_hand, product.last_request_id,
                     static_cast<int64_t>(product.last_request_fingerprint));
            if (inserted.empty()) continue;
            result = {ProductFromRow(inserted[0]), true, product.last_request_fingerprint};
            return absl::OkStatus();
          }
          Product stored = ProductFromRow(found[0]);
          OP_RETURN_IF_ERROR(stored.Replace(product, expected_version));
          pqxx::result replaced =
              Exec(tx, kReplaceProduct, stored.sku, stored.name, stored.unit_price.currency,
                   stored.unit_price.minor, stored.on_hand, stored.last_request_id,
                   static_cast<int64_t>(stored.last_request_fingerprint));
          result = {ProductFromRow(replaced.at(0)), true, product.last_request_fingerprint};
          return absl::OkStatus();
        }
        return absl::AbortedError(
            absl::StrCat("product ", product.sku, " is being created concurrently; try again"));
      }));
  return result;
}

absl::StatusOr<Product> PgInventoryRepository::GetProduct(absl::string_view sku) {
  absl::StatusOr<Product> result;
  OP_RETURN_IF_ERROR(
      RunTransaction(pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
                     [&](pqxx::transaction_base& tx) -> absl::Status {
                       pqxx::result rows = Exec(tx, kSelectProduct, std::string(sku));
                       result = rows.empty() ? absl::StatusOr<Product>(NotFound("product", sku))
                                             : ProductFromRow(rows[0]);
                       return absl::OkStatus();
                     }));
  return result;
}

absl::StatusOr<std::vector<Product>> PgInventoryRepository::ListProducts(
    absl::string_view after_sku, int32_t limit) {
  const std::string after(after_sku);
  const int64_t max_rows = std::max(limit, 0);
  std::vector<Product> result;
  OP_RETURN_IF_ERROR(RunTransaction(pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
                                    [&](pqxx::transaction_base& tx) -> absl::Status {
                                      result = ProductsFromRows(
                                          Exec(tx, kListProducts, after, max_rows));
                                      return absl::OkStatus();
                                    }));
  return result;
}

// ---- reservations ---------------------------------------------------------------------------

PgInventoryRepository::PgInventoryRepository(ConnectionPool* pool, WriteBatchOptions options)
    : pool_(*pool),
      // Reserve, release, commit, return.
      batch_pool_(BatchPoolOptions(pool->options(), options, 4, "_inventory_batches")),
      reserves_(
          options.max_batch,
          [this](const std::vector<ReserveWrite*>& batch) { SendReserves(batch); },
          SameOrderOrRequest),
      releases_(
          options.max_batch,
          [this](const std::vector<SettleWrite*>& batch) {
            SendSettles(kReleaseReservations, batch);
          },
          SameOrder),
      commits_(
          options.max_batch,
          [this](const std::vector<SettleWrite*>& batch) {
            SendSettles(kCommitReservations, batch);
          },
          SameOrder),
      returns_(
          options.max_batch,
          [this](const std::vector<SettleWrite*>& batch) {
            SendSettles(kReturnReservations, batch);
          },
          SameOrder) {}

PgInventoryRepository::~PgInventoryRepository() = default;

GroupCommitStats PgInventoryRepository::SettleStats() const {
  GroupCommitStats total = releases_.Stats();
  total += commits_.Stats();
  total += returns_.Stats();
  return total;
}

void PgInventoryRepository::SendReserves(const std::vector<ReserveWrite*>& batch) {
  std::vector<std::string> order_ids, request_ids;
  std::vector<int64_t> fingerprints;
  ItemArrays items;
  for (size_t i = 0; i < batch.size(); ++i) {
    const Reservation& reservation = *batch[i]->reservation;
    order_ids.push_back(reservation.order_id);
    request_ids.push_back(reservation.request_id);
    fingerprints.push_back(static_cast<int64_t>(reservation.request_fingerprint));
    items.Add(static_cast<int64_t>(i) + 1, reservation.items);
  }
  pqxx::result rows;
  // Keyed by order and request id: re-running it after a lost connection writes nothing for the
  // orders it reserved, and they are then decided alone (finding their reservation).
  const absl::Status status =
      RunSharedStatement(batch_pool_, batch, [&](pqxx::transaction_base& tx) {
        rows = Exec(tx, kReserveIfAvailable, TextArray(order_ids), TextArray(request_ids),
                    IntArray(fingerprints), IntArray(items.ordinals), TextArray(items.skus),
                    IntArray(items.quantities));
      });
  if (!status.ok()) return;
  for (const pqxx::row& row : rows) {
    ReserveWrite& write = *batch.at(row[0].as<int64_t>() - 1);
    write.reserved = true;
    write.create_time = TimeFromField(row[1]);
    write.update_time = TimeFromField(row[2]);
  }
}

void PgInventoryRepository::SendSettles(const Statement& apply,
                                        const std::vector<SettleWrite*>& batch) {
  std::vector<std::string> order_ids;
  for (const SettleWrite* write : batch) order_ids.push_back(write->order_id);
  std::vector<Reservation> moved;
  // Re-running after a lost connection finds the reservations moved and changes nothing; they
  // are then decided alone.
  const absl::Status status =
      RunSharedStatement(batch_pool_, batch, [&](pqxx::transaction_base& tx) {
        moved = ReservationsFromRows(Exec(tx, apply, TextArray(order_ids)));
      });
  if (!status.ok()) return;
  for (Reservation& reservation : moved) {
    for (SettleWrite* write : batch) {
      if (write->order_id == reservation.order_id) write->moved = std::move(reservation);
    }
  }
}

absl::StatusOr<inventory::ReserveResult> PgInventoryRepository::Reserve(
    const Reservation& reservation) {
  inventory::ReserveResult result;
  auto created = [&](absl::Time create_time, absl::Time update_time) {
    result.reservation = reservation;
    result.reservation.status = ReservationStatus::kHeld;
    result.reservation.version = 1;
    result.reservation.create_time = create_time;
    result.reservation.update_time = update_time;
    result.created = true;
  };
  // The common case: one statement, shared with the other orders reserving at the same time.
  ReserveWrite write{.reservation = &reservation};
  reserves_.Submit(write);
  if (write.reserved) {
    created(write.create_time, write.update_time);
    return result;
  }
  // Not reserved by that statement: a replay, a shortage, an unknown SKU, an order refused for
  // an earlier one's demand in the same statement, or a statement that failed. Decided alone,
  // under the products' locks, with the domain's rules.
  ItemArrays items;
  items.Add(1, reservation.items);
  const std::string sku_array = TextArray(items.skus);
  const auto fingerprint = static_cast<int64_t>(reservation.request_fingerprint);
  // The existing reservation of the order or request, if any: the idempotent answer.
  auto find_existing = [&](pqxx::transaction_base& tx) {
    std::vector<Reservation> existing = ReservationsFromRows(
        Exec(tx, kSelectReservationOfOrderOrRequest, reservation.order_id, reservation.request_id));
    if (existing.empty()) return false;
    result = {std::move(existing.front()), false};
    return true;
  };
  // Keyed by order and request id, so a re-run after a lost COMMIT returns what it created.
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kReadCommitted, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        // A replay takes no locks.
        if (find_existing(tx)) return absl::OkStatus();
        std::vector<Product> products = ProductsFromRows(Exec(tx, kLockProducts, sku_array));
        if (absl::Status stock = inventory::CheckStock(reservation.items, products); !stock.ok()) {
          // While we waited for the locks, a concurrent request for this same order may have
          // taken the stock: then its reservation is the answer, not the shortage.
          if (find_existing(tx)) return absl::OkStatus();
          return stock;
        }
        IndexOnlyPlansUntilCommit(tx);
        pqxx::result inserted =
            Exec(tx, kReserveIfAvailable, TextArray({reservation.order_id}),
                 TextArray({reservation.request_id}), IntArray(std::vector<int64_t>{fingerprint}),
                 IntArray(items.ordinals), sku_array, IntArray(items.quantities));
        if (inserted.empty()) {
          // Created concurrently since our first look; nothing was written by us.
          if (find_existing(tx)) return absl::OkStatus();
          return absl::InternalError(absl::StrCat("reservation for order ", reservation.order_id,
                                                  " conflicted but cannot be read"));
        }
        created(TimeFromField(inserted[0][1]), TimeFromField(inserted[0][2]));
        return absl::OkStatus();
      }));
  return result;
}

absl::StatusOr<Reservation> PgInventoryRepository::Settle(
    GroupCommit<SettleWrite>& batches, const Statement& apply, absl::string_view order_id,
    absl::StatusOr<bool> (Reservation::*transition)()) {
  // The common case, a reservation in the state `apply` moves it from: one statement, shared
  // with the other orders making the same move at the same time.
  SettleWrite write{.order_id = std::string(order_id)};
  batches.Submit(write);
  if (write.moved) return std::move(*write.moved);
  // Otherwise (absent, already moved, in a state the transition refuses, or a statement that
  // failed) the reservation is locked and the domain's transition decides: unchanged, an error,
  // or (created or moved since the first look) `apply` after all.
  const std::string ids = TextArray({write.order_id});
  Reservation saved;
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kReadCommitted, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        OP_ASSIGN_OR_RETURN(
            saved,
            SingleReservation(Exec(tx, kSelectReservationForUpdate, write.order_id), order_id));
        const ReservationStatus before = saved.status;
        OP_ASSIGN_OR_RETURN(const bool changed, (saved.*transition)());
        if (!changed) return absl::OkStatus();
        IndexOnlyPlansUntilCommit(tx);
        std::vector<Reservation> applied = ReservationsFromRows(Exec(tx, apply, ids));
        if (applied.empty()) {
          return absl::InternalError(absl::StrCat("reservation for order ", order_id,
                                                  " is locked but was no longer ",
                                                  inventory::ReservationStatusName(before)));
        }
        saved = std::move(applied.front());
        return absl::OkStatus();
      }));
  return saved;
}

absl::StatusOr<Reservation> PgInventoryRepository::Release(absl::string_view order_id) {
  return Settle(releases_, kReleaseReservations, order_id, &Reservation::Release);
}

absl::StatusOr<Reservation> PgInventoryRepository::Commit(absl::string_view order_id) {
  return Settle(commits_, kCommitReservations, order_id, &Reservation::Commit);
}

absl::StatusOr<Reservation> PgInventoryRepository::Return(absl::string_view order_id) {
  return Settle(returns_, kReturnReservations, order_id, &Reservation::Return);
}

absl::StatusOr<Reservation> PgInventoryRepository::GetReservation(absl::string_view order_id) {
  absl::StatusOr<Reservation> result;
  OP_RETURN_IF_ERROR(RunTransaction(
      pool_, {.mode = TxMode::kAutocommit, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        result = SingleReservation(Exec(tx, kSelectReservation, std::string(order_id)), order_id);
        return absl::OkStatus();
      }));
  return result;
}

}  // namespace order_platform::db
