DROP TABLE IF EXISTS orders.order_items;
DROP TABLE IF EXISTS orders.orders;
