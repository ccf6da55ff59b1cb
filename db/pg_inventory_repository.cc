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
    " WHERE r.order_id = $1 OR r.request_id = $2"
    " ORDER BY r.order_id = $1 DESC, r.order_id, i.line_no"};

// Inserts the reservation ($1 order, $2 request id, $3 fingerprint) with its items ($4 text[]
// of SKUs, $5 int[] of quantities) and raises `reserved` of every product, in one statement.
// When a reservation of the order or with the request id exists, nothing is written and no row
// is returned.
constexpr Statement kInsertReservation{
    "inventory.insert_reservation",
    "WITH reservation AS ("
    "  INSERT INTO inventory.reservations (order_id, status, request_id, request_fingerprint)"
    "  VALUES ($1, 'held', $2, $3)"
    "  ON CONFLICT DO NOTHING"
    "  RETURNING order_id, created_at, updated_at"
    "), items AS ("
    "  INSERT INTO inventory.reservation_items (order_id, line_no, sku, quantity)"
    "  SELECT reservation.order_id, t.n, t.sku, t.quantity FROM reservation,"
    "    unnest($4::text[], $5::int[]) WITH ORDINALITY AS t(sku, quantity, n)"
    "), stock AS ("
    "  UPDATE inventory.products p SET reserved = p.reserved + t.quantity,"
    "    version = p.version + 1, updated_at = now()"
    "  FROM reservation, unnest($4::text[], $5::int[]) AS t(sku, quantity)"
    "  WHERE p.sku = t.sku"
    ") "
    "SELECT " OP_EPOCH_US("created_at") ", " OP_EPOCH_US("updated_at") " FROM reservation"};

// Moves the held reservation of order $1 to released and returns each item's quantity to its
// product, in one statement. Returns the new version and update time; no row if not held.
constexpr Statement kReleaseReservation{
    "inventory.release_reservation",
    "WITH reservation AS ("
    "  UPDATE inventory.reservations SET status = 'released', version = version + 1,"
    "    updated_at = now()"
    "  WHERE order_id = $1 AND status = 'held'"
    "  RETURNING order_id, version, updated_at"
    "), stock AS ("
    "  UPDATE inventory.products p SET reserved = p.reserved - i.quantity,"
    "    version = p.version + 1, updated_at = now()"
    "  FROM reservation JOIN inventory.reservation_items i ON i.order_id = reservation.order_id"
    "  WHERE p.sku = i.sku"
    ") "
    "SELECT version, " OP_EPOCH_US("updated_at") " FROM reservation"};

// Moves the held reservation of order $1 to committed and takes each item's quantity off both
// on_hand and reserved of its product, in one statement. Returns as kReleaseReservation.
constexpr Statement kCommitReservation{
    "inventory.commit_reservation",
    "WITH reservation AS ("
    "  UPDATE inventory.reservations SET status = 'committed', version = version + 1,"
    "    updated_at = now()"
    "  WHERE order_id = $1 AND status = 'held'"
    "  RETURNING order_id, version, updated_at"
    "), stock AS ("
    "  UPDATE inventory.products p SET reserved = p.reserved - i.quantity,"
    "    on_hand = p.on_hand - i.quantity, version = p.version + 1, updated_at = now()"
    "  FROM reservation JOIN inventory.reservation_items i ON i.order_id = reservation.order_id"
    "  WHERE p.sku = i.sku"
    ") "
    "SELECT version, " OP_EPOCH_US("updated_at") " FROM reservation"};

// Moves the committed reservation of order $1 to returned and puts each item's quantity back
// onto on_hand of its product (reserved is untouched), in one statement. Returns as
// kReleaseReservation; no row if not committed.
constexpr Statement kReturnReservation{
    "inventory.return_reservation",
    "WITH reservation AS ("
    "  UPDATE inventory.reservations SET status = 'returned', version = version + 1,"
    "    updated_at = now()"
    "  WHERE order_id = $1 AND status = 'committed'"
    "  RETURNING order_id, version, updated_at"
    "), stock AS ("
    "  UPDATE inventory.products p SET on_hand = p.on_hand + i.quantity,"
    "    version = p.version + 1, updated_at = now()"
    "  FROM reservation JOIN inventory.reservation_items i ON i.order_id = reservation.order_id"
    "  WHERE p.sku = i.sku"
    ") "
    "SELECT version, " OP_EPOCH_US("updated_at") " FROM reservation"};

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

std::string SkuArray(const std::vector<ReservationItem>& items) {
  std::vector<std::string> skus;
  skus.reserve(items.size());
  for (const ReservationItem& item : items) skus.push_back(item.sku);
  return TextArray(skus);
}

// Applies `transition` (Reservation::Release, ::Commit or ::Return) to the reservation of
// `order_id` and, when it changed the status, runs `apply` (the matching statement above, which
// moves the status and the stock together) with the reservation and its products locked.
absl::StatusOr<Reservation> Settle(ConnectionPool& pool, absl::string_view order_id,
                                   absl::StatusOr<bool> (Reservation::*transition)(),
                                   const Statement& apply) {
  Reservation saved;
  // Re-running after a lost COMMIT finds the reservation settled and changes nothing.
  OP_RETURN_IF_ERROR(RunTransaction(
      pool, {.mode = TxMode::kReadCommitted, .idempotent = true},
      [&](pqxx::transaction_base& tx) -> absl::Status {
        OP_ASSIGN_OR_RETURN(
            Reservation reservation,
            SingleReservation(Exec(tx, kSelectReservationForUpdate, std::string(order_id)),
                              order_id));
        const ReservationStatus before = reservation.status;
        OP_ASSIGN_OR_RETURN(const bool changed, (reservation.*transition)());
        if (changed) {
          Exec(tx, kLockProducts, SkuArray(reservation.items));
          pqxx::result settled = Exec(tx, apply, reservation.order_id);
          if (settled.empty()) {
            return absl::InternalError(absl::StrCat("reservation for order ", order_id,
                                                    " is locked but was no longer ",
                                                    inventory::ReservationStatusName(before)));
          }
          reservation.version = settled[0][0].as<int64_t>();
          reservation.update_time = TimeFromField(settled[0][1]);
        }
        saved = std::move(reservation);
        return absl::OkStatus();
      }));
  return saved;
}

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

absl::StatusOr<inventory::ReserveResult> PgInventoryRepository::Reserve(
    const Reservation& reservation) {
  std::vector<int32_t> quantities;
  for (const ReservationItem& item : reservation.items) quantities.push_back(item.quantity);
  const std::string sku_array = SkuArray(reservation.items);
  const std::string quantity_array = IntArray(quantities);
  inventory::ReserveResult result;
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
        pqxx::result inserted =
            Exec(tx, kInsertReservation, reservation.order_id, reservation.request_id,
                 static_cast<int64_t>(reservation.request_fingerprint), sku_array, quantity_array);
        if (inserted.empty()) {
          // Created concurrently since our first look; nothing was written by us.
          if (find_existing(tx)) return absl::OkStatus();
          return absl::InternalError(absl::StrCat("reservation for order ", reservation.order_id,
                                                  " conflicted but cannot be read"));
        }
        result.reservation = reservation;
        result.reservation.status = ReservationStatus::kHeld;
        result.reservation.version = 1;
        result.reservation.create_time = TimeFromField(inserted[0][0]);
        result.reservation.update_time = TimeFromField(inserted[0][1]);
        result.created = true;
        return absl::OkStatus();
      }));
  return result;
}

absl::StatusOr<Reservation> PgInventoryRepository::Release(absl::string_view order_id) {
  return Settle(pool_, order_id, &Reservation::Release, kReleaseReservation);
}

absl::StatusOr<Reservation> PgInventoryRepository::Commit(absl::string_view order_id) {
  return Settle(pool_, order_id, &Reservation::Commit, kCommitReservation);
}

absl::StatusOr<Reservation> PgInventoryRepository::Return(absl::string_view order_id) {
  return Settle(pool_, order_id, &Reservation::Return, kReturnReservation);
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
