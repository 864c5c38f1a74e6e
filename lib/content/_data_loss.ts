import { ContainerdError, GrpcCode } from "../grpc/errors.ts";

export function dataLoss(method: string, subject: string, details: string): ContainerdError {
  return new ContainerdError({
    code: GrpcCode.DATA_LOSS,
    method,
    details: `${subject}: ${details}`,
  });
}
