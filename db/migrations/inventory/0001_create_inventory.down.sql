DROP TABLE IF EXISTS inventory.reservation_items;
DROP TABLE IF EXISTS inventory.reservations;
DROP TABLE IF EXISTS inventory.product_upserts;
DROP TABLE IF EXISTS inventory.products;
