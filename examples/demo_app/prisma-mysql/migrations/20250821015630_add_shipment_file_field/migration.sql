-- AlterTable
ALTER TABLE `Shipment` ADD COLUMN `shipmentFile` VARCHAR(191) NULL;
