-- AlterTable
ALTER TABLE "Shipment" ADD COLUMN     "shipmentFile" TEXT;
