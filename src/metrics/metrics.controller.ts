import { Controller, Get, Header } from '@nestjs/common';
import { ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import { MetricsService } from './metrics.service.js';

/** Prometheus scrape endpoint (text exposition format). */
@ApiTags('metrics')
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @ApiOperation({
    summary: 'Prometheus metrics (text exposition format 0.0.4)',
    description: 'HTTP request durations, session and mail counters, mail queue depth. Never contains tokens or codes.',
  })
  @ApiProduces('text/plain')
  @ApiResponse({
    status: 200,
    description: 'The current metrics.',
    content: { 'text/plain': { schema: { type: 'string', example: '# TYPE sessions_created_total counter\nsessions_created_total{device_type="mobi"} 3' } } },
  })
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  @Header('Cache-Control', 'no-store')
  scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
